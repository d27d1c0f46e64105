"""Users: the User type, user, users, updateUser and changePassword."""

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.permission import PermissionExtension

from core.errors import NotFound
from db import users
from db.models import Role, User
from db.records import UserRecord
from graph.context import Info
from graph.inputs import given
from graph.pagination import (
    BY_ID_ONLY,
    DEFAULT_PAGE_SIZE,
    Connection,
    OrderDirection,
    page_request,
    to_connection,
)
from graph.permissions import (
    CanSeeInputUser,
    CanSeeRelatedUser,
    CanSeeUser,
    CanSeeUserDetails,
    CanUpdateUser,
    IsAdmin,
    IsAuthenticated,
)
from graph.resolving import lazy_class

if TYPE_CHECKING:
    from graph.projects import ProjectType

# The domain enum is the GraphQL enum: registering it marks the same class.
strawberry.enum(Role, name="Role", description="What a user may do.")


def _user_detail(description: str) -> Any:
    return strawberry.field(permission_classes=[CanSeeUserDetails], description=description)


@strawberry.type(name="User", description="A person who can log in.")
class UserType:
    id: int
    email: str
    full_name: str
    model: strawberry.Private[User | UserRecord]
    # True when handed to the person it describes (register, login), whose request has no token.
    handed_to_owner: strawberry.Private[bool] = False

    @classmethod
    def from_model(cls, user: User | UserRecord) -> "UserType":
        assert user.id is not None
        return cls(id=user.id, email=user.email, full_name=user.full_name, model=user)

    @classmethod
    def for_owner(cls, user: User) -> "UserType":
        """The user, as shown to themselves."""
        shown = cls.from_model(user)
        shown.handed_to_owner = True
        return shown

    @_user_detail("Admins and the user themselves only.")
    def role(self) -> Role | None:
        return self.model.role

    @_user_detail("Admins and the user themselves only.")
    def is_active(self) -> bool | None:
        return self.model.is_active

    @_user_detail("Admins and the user themselves only.")
    def created_at(self) -> datetime | None:
        return self.model.created_at

    @strawberry.field(
        permission_classes=[IsAuthenticated, CanSeeUserDetails],
        description="The projects the user is a member of, by id. Admins and the user only.",
    )
    async def projects(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Annotated["ProjectType", strawberry.lazy("graph.projects")]] | None:
        # Through strawberry.lazy, as in the annotation: graph.projects imports this module.
        project_type = lazy_class("graph.projects", "ProjectType")
        request = page_request(info, first=first, after=after, sorts=BY_ID_ONLY)
        page = await info.context.loaders.projects_by_member.load((self.id, request))
        return to_connection(page, request, project_type.from_model)


def user_or_none(user: User | UserRecord | None) -> UserType | None:
    """The user as a User object; None for none."""
    return None if user is None else UserType.from_model(user)


async def load_user(info: Info, user_id: int | None) -> UserType | None:
    """The user with this id through the request's loader; None for no id or no user."""
    user = None if user_id is None else await info.context.loaders.user_by_id.load(user_id)
    return user_or_none(user)


def creator_field() -> Any:
    """The `createdBy` field of a type: null, not an error, when the caller may not see them."""
    return strawberry.field(
        extensions=[PermissionExtension([CanSeeRelatedUser()], fail_silently=True)],
        description="Who created it; null when gone or when the caller may not see them.",
    )


@strawberry.input(description="Every field narrows the list further.")
class UserFilter:
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive, anywhere in the email or full name."
    )
    role: Role | None = None
    is_active: bool | None = None


@strawberry.enum(description="What a user list can be ordered by; the id breaks ties.")
class UserOrderField(enum.Enum):
    CREATED_AT = "created_at"
    EMAIL = "email"
    FULL_NAME = "full_name"


@strawberry.input(description="How to order users. Without it: by id, oldest first.")
class UserOrder:
    field: UserOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Set only the fields to change.")
class UpdateUserInput:
    id: int
    full_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="The user themselves, or an admin."
    )
    role: Role | None = strawberry.field(default=strawberry.UNSET, description="Admins only.")
    is_active: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Admins only. Deactivating revokes the user's tokens.",
    )

    def changes(self) -> users.UserChanges:
        """The fields that are set; null is not a value any of them takes."""
        changes = users.UserChanges()
        if given(self.full_name, "fullName"):
            changes["full_name"] = self.full_name
        if given(self.role, "role"):
            changes["role"] = self.role
        if given(self.is_active, "isActive"):
            changes["is_active"] = self.is_active
        return changes


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str = strawberry.field(description="8 characters minimum, 72 bytes maximum.")


@strawberry.type
class UpdateUserPayload:
    user: UserType


@strawberry.type
class ChangePasswordPayload:
    user: UserType


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[CanSeeUser],
        description="A user: admins see anyone, a user themselves and who shares a project.",
    )
    async def user(self, info: Info, id: int) -> UserType | None:
        found = await info.context.loaders.user_by_id.load(id)
        return None if found is None else UserType.from_model(found)

    @strawberry.field(permission_classes=[IsAdmin], description="Every user. Admins only.")
    async def users(
        self,
        info: Info,
        filter: UserFilter | None = None,
        order_by: UserOrder | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[UserType]:
        request = page_request(
            info, first=first, after=after, sorts=users.USER_SORTS, order=order_by
        )
        f = filter or UserFilter()
        user_filter = users.UserFilter(search=f.search or None, role=f.role, is_active=f.is_active)
        async with info.context.session_factory() as session:
            page = await users.list_users(session=session, user_filter=user_filter, request=request)
        return to_connection(page, request, UserType.from_model)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[CanSeeInputUser, CanUpdateUser],
        description="Change a user: their own fullName, or (admins) anyone's role and isActive. "
        "The last active admin cannot be demoted or deactivated (CONFLICT).",
    )
    async def update_user(self, info: Info, input: UpdateUserInput) -> UpdateUserPayload:
        async with info.context.session_factory.begin() as session:
            user = await users.update_user(
                session=session, user_id=input.id, changes=input.changes()
            )
        if user is None:
            raise NotFound(f"No user has the id {input.id}.", field="id")
        info.context.loaders.user_by_id.clear(input.id)
        return UpdateUserPayload(user=UserType.from_model(user))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Change your password; the current one is required. Revokes every token "
        "you hold, this one's too: log in again with the new password.",
    )
    async def change_password(
        self, info: Info, input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        user = await info.context.require_user()
        await info.context.authenticator.change_password(
            user=user, current=input.current_password, new=input.new_password
        )
        return ChangePasswordPayload(user=UserType.from_model(user))
