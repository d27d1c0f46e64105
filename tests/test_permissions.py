"""The permission matrix: every query and mutation x every access level, one cell per test.

Each cell runs on a fresh small world (the `world` fixture, tests/support/world.py) and expects
either an error code or data.
README.md's "Permissions" table is the same matrix; a test keeps the two in step.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from db import imports
from db.engine import SessionFactory
from db.models import utcnow
from tests.support.accounts import DEFAULT_PASSWORD
from tests.support.graphql import Gql
from tests.support.world import ROLES, World, pk

OK = "ok"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"

# An outcome is an error code, OK (some data), or the exact names a list returns.
Outcome = str | list[str]
Variables = Callable[[World, Gql, str], Awaitable[dict[str, Any]]]

EMAILS = {
    "non_member": "outsider@example.com",
    "member": "member@example.com",
    "assignee": "assignee@example.com",
    "admin": "admin@example.com",
}


def static(build: Callable[[World], dict[str, Any]]) -> Variables:
    async def variables(world: World, gql: Gql, role: str) -> dict[str, Any]:
        return build(world)

    return variables


def given_input(build: Callable[[World], dict[str, Any]]) -> Variables:
    return static(lambda w: {"input": build(w)})


async def _refresh_token(gql: Gql, email: str) -> str:
    data = (await gql(LOGIN, {"input": {"email": email, "password": DEFAULT_PASSWORD}})).ok()
    token: str = data["login"]["refreshToken"]
    return token


async def assignees_refresh_token(world: World, gql: Gql, role: str) -> dict[str, Any]:
    return {"input": {"refreshToken": await _refresh_token(gql, "assignee@example.com")}}


async def own_refresh_token(world: World, gql: Gql, role: str) -> dict[str, Any]:
    email = EMAILS.get(role, "assignee@example.com")
    return {"input": {"refreshToken": await _refresh_token(gql, email)}}


QUEUED_JOB_ID = "00000000-0000-4000-8000-000000000001"


async def queued_import_job(session_factory: SessionFactory) -> None:
    async with session_factory.begin() as session:
        await imports.create_job(
            session=session,
            job_id=QUEUED_JOB_ID,
            file_name="tasks.csv",
            stored_name=f"{QUEUED_JOB_ID}.csv",
            size_bytes=0,
            created_by=None,
            now=utcnow(),
        )


@dataclass(frozen=True)
class Operation:
    label: str  # the README row
    document: str
    variables: Variables
    expect: dict[str, Outcome]
    # Rows the operation needs beyond the world, written before it runs.
    prepare: Callable[[SessionFactory], Awaitable[None]] | None = None

    @property
    def field(self) -> str:
        match = re.search(r"{\s*(\w+)", self.document)
        assert match is not None
        return match.group(1)


def by_role(
    anonymous: Outcome, non_member: Outcome, member: Outcome, assignee: Outcome, admin: Outcome
) -> dict[str, Outcome]:
    return dict(zip(ROLES, (anonymous, non_member, member, assignee, admin), strict=True))


LOGIN = "mutation($input: LoginInput!) { login(input: $input) { refreshToken user { id } } }"
UPDATE_TASK = "mutation($input: UpdateTaskInput!) { updateTask(input: $input) { task { title } } }"
UPDATE_USER = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }"
MEMBER_INPUT = "$input: ProjectMemberInput!"
ALL_TASKS = ["Write spec", "Review spec", "Other work"]
ALL_EMAILS = [EMAILS[r] for r in ("admin", "member", "assignee", "non_member")]
U, F, N = UNAUTHENTICATED, FORBIDDEN, NOT_FOUND

OPERATIONS = [
    Operation("me", "{ me { id } }", static(lambda w: {}), by_role(U, OK, OK, OK, OK)),
    Operation(
        "user (the assignee)",
        "query($id: Int!) { user(id: $id) { id email fullName } }",
        static(lambda w: {"id": pk(w.assignee)}),
        by_role(U, N, OK, OK, OK),
    ),
    Operation(
        "users",
        "{ users { edges { node { name: email } } } }",
        static(lambda w: {}),
        by_role(U, F, F, F, ALL_EMAILS),
    ),
    Operation(
        "project",
        "query($id: Int!) { project(id: $id) { name } }",
        static(lambda w: {"id": pk(w.apollo)}),
        by_role(U, N, OK, OK, OK),
    ),
    Operation(
        "projects",
        "{ projects { edges { node { name } } } }",
        static(lambda w: {}),
        by_role(U, ["Zephyr"], ["Apollo"], ["Apollo"], ["Apollo", "Zephyr"]),
    ),
    Operation(
        "task",
        "query($id: Int!) { task(id: $id) { title } }",
        static(lambda w: {"id": pk(w.spec)}),
        by_role(U, N, N, OK, OK),
    ),
    Operation(
        "tasks",
        "{ tasks { edges { node { name: title } } } }",
        static(lambda w: {}),
        by_role(U, ["Other work"], [], ["Write spec"], ALL_TASKS),
    ),
    Operation(
        "createProject",
        "mutation($input: CreateProjectInput!) { createProject(input: $input) { project { id } } }",
        given_input(lambda w: {"name": "Borealis"}),
        by_role(U, F, F, F, OK),
    ),
    Operation(
        "updateProject",
        "mutation($input: UpdateProjectInput!) { updateProject(input: $input) { project { id } } }",
        given_input(lambda w: {"id": pk(w.apollo), "name": "Artemis"}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "deleteProject",
        "mutation($input: DeleteProjectInput!) { deleteProject(input: $input) { deletedId } }",
        given_input(lambda w: {"id": pk(w.apollo)}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "addProjectMember",
        f"mutation({MEMBER_INPUT}) {{ addProjectMember(input: $input) {{ user {{ id }} }} }}",
        given_input(lambda w: {"projectId": pk(w.apollo), "userId": pk(w.outsider)}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "removeProjectMember",
        f"mutation({MEMBER_INPUT}) {{ removeProjectMember(input: $input) {{ user {{ id }} }} }}",
        given_input(lambda w: {"projectId": pk(w.apollo), "userId": pk(w.assignee)}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "createTask",
        "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }",
        given_input(lambda w: {"projectId": pk(w.apollo), "title": "Launch"}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "updateTask (title, description, status)",
        UPDATE_TASK,
        given_input(lambda w: {"id": pk(w.spec), "title": "Spec v2", "status": "DONE"}),
        by_role(U, N, N, OK, OK),
    ),
    Operation(
        "updateTask (assigneeId)",
        UPDATE_TASK,
        given_input(lambda w: {"id": pk(w.spec), "assigneeId": pk(w.member)}),
        by_role(U, N, N, F, OK),
    ),
    Operation(
        "updateTask (projectId)",
        UPDATE_TASK,
        given_input(lambda w: {"id": pk(w.spec), "projectId": pk(w.zephyr), "assigneeId": None}),
        by_role(U, N, N, F, OK),
    ),
    Operation(
        "deleteTask",
        "mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedId } }",
        given_input(lambda w: {"id": pk(w.spec)}),
        by_role(U, N, N, F, OK),
    ),
    Operation(
        "updateUser (the assignee's fullName)",
        UPDATE_USER,
        given_input(lambda w: {"id": pk(w.assignee), "fullName": "Asa A."}),
        by_role(U, N, F, OK, OK),
    ),
    Operation(
        "updateUser (the assignee's role)",
        UPDATE_USER,
        given_input(lambda w: {"id": pk(w.assignee), "role": "ADMIN"}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "updateUser (the assignee's isActive)",
        UPDATE_USER,
        given_input(lambda w: {"id": pk(w.assignee), "isActive": False}),
        by_role(U, N, F, F, OK),
    ),
    Operation(
        "changePassword (own)",
        "mutation($input: ChangePasswordInput!) { changePassword(input: $input) { user { id } } }",
        given_input(
            lambda w: {"currentPassword": DEFAULT_PASSWORD, "newPassword": "another long secret"}
        ),
        by_role(U, OK, OK, OK, OK),
    ),
    Operation(
        "register",
        "mutation($input: RegisterInput!) { register(input: $input) { id } }",
        given_input(
            lambda w: {"email": "new@example.com", "password": DEFAULT_PASSWORD, "fullName": "N"}
        ),
        by_role(OK, OK, OK, OK, OK),
    ),
    Operation(
        "login",
        LOGIN,
        given_input(lambda w: {"email": "assignee@example.com", "password": DEFAULT_PASSWORD}),
        by_role(OK, OK, OK, OK, OK),
    ),
    Operation(
        "refreshToken",
        "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) { accessToken } }",
        assignees_refresh_token,
        by_role(OK, OK, OK, OK, OK),
    ),
    Operation(
        "logout (own refresh token)",
        "mutation($input: LogoutInput!) { logout(input: $input) { ok } }",
        own_refresh_token,
        by_role(U, OK, OK, OK, OK),
    ),
    Operation(
        "cancelImportJob (a queued job)",
        "mutation($id: ID!) { cancelImportJob(id: $id) { status } }",
        static(lambda w: {"id": QUEUED_JOB_ID}),
        by_role(U, F, F, F, OK),
        prepare=queued_import_job,
    ),
    Operation(
        "exportTasks",
        "mutation { exportTasks { url } }",
        static(lambda w: {}),
        by_role(U, OK, OK, OK, OK),
    ),
]


def cell_id(operation: Operation, role: str) -> str:
    return re.sub(r"\W+", "_", operation.label).strip("_") + "-" + role


CELLS = [pytest.param(op, role, id=cell_id(op, role)) for op in OPERATIONS for role in ROLES]


@pytest.mark.parametrize(("operation", "role"), CELLS)
async def test_cell(
    gql: Gql, world: World, session_factory: SessionFactory, operation: Operation, role: str
) -> None:
    if operation.prepare is not None:
        await operation.prepare(session_factory)
    variables = await operation.variables(world, gql, role)
    result = await gql(operation.document, variables, token=world.token(role))
    expected = operation.expect[role]
    assert result.status_code == 200, result.body
    if isinstance(expected, str) and expected != OK:
        assert result.codes == [expected], result.errors
        assert (result.data or {}).get(operation.field) is None
        return
    value = result.ok()[operation.field]
    assert value is not None
    if isinstance(expected, list):
        assert [edge["node"]["name"] for edge in value["edges"]] == expected


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_matrix() -> dict[str, list[str]]:
    """The Permissions table of README.md: operation label -> its five cells."""
    section = README.read_text(encoding="utf-8").split("## Permissions", 1)[1]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 1 + len(ROLES):
            rows[cells[0].replace("`", "")] = [c.replace("`", "") for c in cells[1:]]
    return rows


def test_readme_shows_the_tested_matrix() -> None:
    documented = readme_matrix()
    assert list(documented) == [op.label for op in OPERATIONS]
    for op in OPERATIONS:
        for role, cell in zip(ROLES, documented[op.label], strict=True):
            expected = op.expect[role]
            if isinstance(expected, list) or expected == OK:
                assert cell.startswith("✓"), (op.label, role, cell)
            else:
                assert cell == expected, (op.label, role, cell)
