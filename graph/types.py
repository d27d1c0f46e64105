"""GraphQL types shared by several domains."""

from datetime import datetime

import strawberry

from db import models

# The domain enums are the GraphQL enums: registering them marks the same classes.
strawberry.enum(models.Role, name="Role", description="What a user may do.")
strawberry.enum(models.TaskStatus, name="TaskStatus", description="Where a task stands.")


@strawberry.type(name="User", description="A person who can log in.")
class UserType:
    id: int
    email: str
    full_name: str
    role: models.Role
    is_active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, user: models.User) -> "UserType":
        assert user.id is not None
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            is_active=user.is_active,
            created_at=user.created_at,
        )
