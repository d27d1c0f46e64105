"""A small world for the API tests: two projects, four people, three tasks.

- project "Apollo" (created by the admin): members `member` and `assignee`;
  task "Write spec" assigned to `assignee`, task "Review spec" unassigned.
- project "Zephyr": member `outsider` (a non-member of Apollo); task "Other work" assigned to them.
"""

from dataclasses import dataclass

from db.engine import SessionFactory
from db.models import Project, ProjectMember, Role, Task, TaskStatus, User
from tests.conftest import TokenFor, UserFactory

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


async def build_world(
    session_factory: SessionFactory, make_user: UserFactory, token_for: TokenFor
) -> World:
    admin = await make_user(email="admin@example.com", full_name="Ada Admin", role=Role.ADMIN)
    member = await make_user(email="member@example.com", full_name="Mo Member")
    assignee = await make_user(email="assignee@example.com", full_name="Asa Assignee")
    outsider = await make_user(email="outsider@example.com", full_name="Otto Outsider")
    async with session_factory.begin() as session:
        apollo = Project(name="Apollo", description="Moon shot", created_by=admin.id)
        zephyr = Project(name="Zephyr", description="Wind", created_by=admin.id)
        session.add_all([apollo, zephyr])
        await session.flush()
        session.add_all(
            [
                ProjectMember(project_id=pk(apollo), user_id=pk(member)),
                ProjectMember(project_id=pk(apollo), user_id=pk(assignee)),
                ProjectMember(project_id=pk(zephyr), user_id=pk(outsider)),
            ]
        )
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
