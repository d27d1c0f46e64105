"""The small worlds tests run in, built by the `world` and `import_world` fixtures.

`World`, for the API and permission tests: who may see and change what.
- project "Apollo" (created by the admin): members `member` and `assignee`;
  task "Write spec" assigned to `assignee`, task "Review spec" unassigned.
- project "Zephyr": member `outsider` (a non-member of Apollo); task "Other work" assigned to them.

`ImportWorld`, for the CSV import tests: the ids that rows refer to, and no tasks, so that every
task in the database came from the import under test.
- project 1 with member 2 (active) and member 3 (deactivated); user 4 is in no project.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from db.engine import SessionFactory
from db.models import Project, ProjectMember, Task, TaskStatus, User
from tests.support.accounts import TokenFor, UserFactory

ROLES = ("anonymous", "non_member", "member", "assignee", "admin")


def pk(row: User | Project | Task) -> int:
    """A saved row's id."""
    assert row.id is not None
    return row.id


@dataclass(frozen=True, slots=True)
class World:
    admin: User
    member: User
    assignee: User
    outsider: User
    apollo: Project
    zephyr: Project
    spec: Task  # Apollo, assigned to `assignee`
    review: Task  # Apollo, unassigned
    other: Task  # Zephyr, assigned to `outsider`
    tokens: dict[str, str | None]

    def token(self, role: str) -> str | None:
        return self.tokens[role]


@dataclass(frozen=True, slots=True)
class ImportWorld:
    """Project 1 with member 2 (active) and member 3 (deactivated); user 4 is in no project."""

    project_id: int
    member_id: int
    inactive_member_id: int
    outsider_id: int


async def add_project(
    session_factory: SessionFactory,
    admin: User,
    name: str,
    members: Sequence[User],
    *,
    description: str = "",
) -> Project:
    """A project created by `admin`, with `members` in it."""
    async with session_factory.begin() as session:
        project = Project(name=name, description=description, created_by=admin.id)
        session.add(project)
        await session.flush()
        session.add_all(ProjectMember(project_id=pk(project), user_id=pk(m)) for m in members)
    return project


async def build_world(
    session_factory: SessionFactory, admin: User, make_user: UserFactory, token_for: TokenFor
) -> World:
    member = await make_user(email="member@example.com", full_name="Mo Member")
    assignee = await make_user(email="assignee@example.com", full_name="Asa Assignee")
    outsider = await make_user(email="outsider@example.com", full_name="Otto Outsider")
    apollo = await add_project(
        session_factory, admin, "Apollo", [member, assignee], description="Moon shot"
    )
    zephyr = await add_project(session_factory, admin, "Zephyr", [outsider], description="Wind")
    async with session_factory.begin() as session:
        spec = Task(
            project_id=pk(apollo),
            title="Write spec",
            description="The first draft",
            status=TaskStatus.IN_PROGRESS,
            assigned_to=assignee.id,
            created_by=admin.id,
        )
        review = Task(project_id=pk(apollo), title="Review spec", created_by=admin.id)
        other = Task(project_id=pk(zephyr), title="Other work", assigned_to=outsider.id)
        session.add_all([spec, review, other])
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "non_member": token_for(outsider),
        "member": token_for(member),
        "assignee": token_for(assignee),
        "admin": token_for(admin),
    }
    return World(admin, member, assignee, outsider, apollo, zephyr, spec, review, other, tokens)


async def build_import_world(
    session_factory: SessionFactory, admin: User, make_user: UserFactory
) -> ImportWorld:
    member = await make_user(email="member@example.com")
    inactive = await make_user(email="gone@example.com", is_active=False)
    outsider = await make_user(email="outsider@example.com")
    project = await add_project(session_factory, admin, "Website", [member, inactive])
    return ImportWorld(pk(project), pk(member), pk(inactive), pk(outsider))
