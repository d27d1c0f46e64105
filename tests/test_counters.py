"""The task counters (`task_count`, migration 0004) stay exact under every kind of write, from
concurrent writers, an import, and a runner killed mid-job; and they answer every count the
way `count(*)` over `task` does."""

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.errors import BadUserInput, Conflict
from core.settings import Settings
from db import counters, migrate, projects, tasks
from db.counters import TaskFilter
from db.engine import SessionFactory, make_engine, make_session_factory
from db.models import ImportJob, ImportStatus, Project, ProjectMember, Task, TaskCount, TaskStatus
from db.paging import Keyset, PageRequest
from db.scopes import ReadScope
from importer.jobs import submit_import
from importer.runner import ImportRunner

Gql = Callable[..., Awaitable[Any]]
MakeUser = Callable[..., Awaitable[Any]]
Key = tuple[int, int, TaskStatus]
STATUSES = list(TaskStatus)
# The spellings an import file may use.
CSV_STATUS = {
    TaskStatus.PENDING: "Pending",
    TaskStatus.IN_PROGRESS: "In Progress",
    TaskStatus.DONE: "done",
}

CREATE_TASK = """
mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }"""
UPDATE_TASK = """
mutation($input: UpdateTaskInput!) { updateTask(input: $input) { task { id } } }"""
DELETE_TASK = """
mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedId } }"""
REMOVE_MEMBER = """
mutation($input: ProjectMemberInput!) { removeProjectMember(input: $input) { user { id } } }"""
ADD_MEMBER = """
mutation($input: ProjectMemberInput!) { addProjectMember(input: $input) { user { id } } }"""
DELETE_PROJECT = """
mutation($input: DeleteProjectInput!) { deleteProject(input: $input) { deletedId } }"""

# --- what the counters hold, and what they should ----------------------------------------------


async def counter_rows(session_factory: SessionFactory) -> dict[Key, int]:
    async with session_factory() as session:
        rows = await session.execute(
            sa.select(
                col(TaskCount.project_id),
                col(TaskCount.assignee_key),
                col(TaskCount.status),
                col(TaskCount.n),
            )
        )
        return {(p, a, TaskStatus(s)): n for p, a, s, n in rows}


async def recount(session_factory: SessionFactory) -> dict[Key, int]:
    """The counters as `count(*)` over `task` says they should be, roll-ups included."""
    expected: Counter[Key] = Counter()
    async with session_factory() as session:
        grouped = await session.execute(
            sa.select(
                col(Task.project_id), col(Task.assigned_to), col(Task.status), sa.func.count()
            ).group_by(col(Task.project_id), col(Task.assigned_to), col(Task.status))
        )
        for project_id, assignee, status, n in grouped:
            expected[(project_id, assignee or counters.UNASSIGNED, TaskStatus(status))] += n
            rollup = counters.UNASSIGNED if assignee is None else counters.ASSIGNED
            expected[(counters.ALL_PROJECTS, rollup, TaskStatus(status))] += n
    return dict(expected)


async def assert_exact(session_factory: SessionFactory) -> dict[Key, int]:
    actual = await counter_rows(session_factory)
    assert [key for key, n in actual.items() if n == 0] == [], "zero rows remain"
    assert actual == await recount(session_factory)
    return actual


# --- a seeded world ----------------------------------------------------------------------------


async def build_world(
    session_factory: SessionFactory, make_user: MakeUser, rng: random.Random, *, tasks_each: int
) -> tuple[list[int], dict[int, set[int]]]:
    """Users and projects, each user a member of two or three, and `tasks_each` tasks per project.
    Returns the user ids and each project's members."""
    users = [(await make_user()).id for _ in range(8)]
    async with session_factory.begin() as session:
        made = [Project(name=f"Project {i}") for i in range(5)]
        session.add_all(made)
        await session.flush()
        members: dict[int, set[int]] = {p.id: set() for p in made if p.id is not None}
        for user_id in users:
            for project_id in rng.sample(sorted(members), rng.randint(2, 3)):
                members[project_id].add(user_id)
                session.add(ProjectMember(project_id=project_id, user_id=user_id))
        for project_id, people in members.items():
            for i in range(tasks_each):
                assignee = rng.choice([None, *sorted(people)])
                status = rng.choice(STATUSES)
                title = f"seed {project_id}-{i}"
                session.add(Task(project_id=project_id, title=title, status=status,
                                 assigned_to=assignee))  # fmt: skip
    return users, members


def csv_rows(
    rng: random.Random, members: dict[int, set[int]], project_ids: list[int], n: int
) -> str:
    """An import file over `project_ids`; some assignees are not members (rejected rows)."""
    everyone = sorted(set().union(*members.values()))
    lines = ["project_id,title,description,status,assigned_to"]
    for i in range(n):
        project_id = rng.choice(project_ids)
        assignee = rng.choice(["", str(rng.choice(everyone)), *map(str, members[project_id])])
        status = CSV_STATUS[rng.choice(STATUSES)]
        lines.append(f"{project_id},imported {i},row {i},{status},{assignee}")
    return "\n".join(lines) + "\n"


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


# --- concurrent writers ------------------------------------------------------------------------


class Writers:
    """Every kind of task write, each in its own transaction; counts what actually happened."""

    KINDS = ("create", "create", "status", "assignee", "move", "title", "delete", "remove_member",
             "add_member")  # fmt: skip
    EXPECTED = (BadUserInput, Conflict, IntegrityError)  # races with each other's writes

    def __init__(
        self, session_factory: SessionFactory, members: dict[int, set[int]], users: list[int]
    ) -> None:
        self.sessions = session_factory
        self.members = members
        self.users = users
        self.done: Counter[str] = Counter()

    async def run(
        self, rng: random.Random, project_ids: list[int], ops: int, kinds: tuple[str, ...] = KINDS
    ) -> None:
        for _ in range(ops):
            kind = rng.choice(kinds)
            try:
                async with self.sessions.begin() as session:
                    if await self._write(session, kind, rng, project_ids):
                        self.done[kind] += 1
            except self.EXPECTED:
                self.done[f"{kind} refused"] += 1

    async def _write(
        self, session: AsyncSession, kind: str, rng: random.Random, project_ids: list[int]
    ) -> bool:
        project_id = rng.choice(project_ids)
        people = sorted(self.members[project_id])
        if kind == "create":
            await tasks.create_task(
                session=session, project_id=project_id, title=f"new {rng.random()}",
                description="", status=rng.choice(STATUSES),
                assignee_id=rng.choice([None, *people]), created_by=None,
            )  # fmt: skip
            return True
        if kind in ("remove_member", "add_member"):
            return await self._membership(session, kind, rng, project_id)
        task = await self._random_task(session, rng, project_ids)
        if task is None:
            return False
        if kind == "delete":
            return await tasks.delete_task(session=session, task_id=pk(task))
        changes: tasks.TaskChanges = {"title": f"renamed {rng.random()}"}
        if kind == "status":
            changes = {"status": rng.choice([s for s in STATUSES if s != task.status])}
        elif kind == "assignee":
            # Never the current assignee: re-checking the membership that a removal is deleting
            # is a lock cycle of the app's own (task row, membership row), not of the counters.
            others = sorted(self.members[task.project_id] - {task.assigned_to or 0})
            changes = {"assignee_id": rng.choice([None, *others])}
        elif kind == "move":
            target = rng.choice([p for p in project_ids if p != task.project_id])
            assignee = rng.choice([None, *sorted(self.members[target])])
            changes = {"project_id": target, "assignee_id": assignee}
        return (
            await tasks.update_task(session=session, task_id=pk(task), changes=changes) is not None
        )

    async def _random_task(
        self, session: AsyncSession, rng: random.Random, project_ids: list[int]
    ) -> Task | None:
        found = await session.execute(
            sa.select(col(Task.id))
            .where(col(Task.project_id).in_(project_ids))
            .order_by(col(Task.id))
        )
        ids = list(found.scalars())
        return await session.get(Task, rng.choice(ids)) if ids else None

    async def _membership(
        self, session: AsyncSession, kind: str, rng: random.Random, project_id: int
    ) -> bool:
        members = self.members[project_id]
        if kind == "add_member":
            user_id = rng.choice(self.users)
            await projects.add_member(session=session, project_id=project_id, user_id=user_id)
            members.add(user_id)
            return True
        if not members:
            return False
        user_id = rng.choice(sorted(members))
        unassigned = await projects.remove_member(
            session=session, project_id=project_id, user_id=user_id
        )
        members.discard(user_id)
        self.done["unassigned by removal"] += unassigned
        return True


def pk(task: Task) -> int:
    assert task.id is not None
    return task.id


async def api_writer(
    gql: Gql,
    token: str,
    rng: random.Random,
    members: dict[int, set[int]],
    project_ids: list[int],
    ops: int,
    done: Counter[str],
) -> None:
    """The same kinds of writes through GraphQL mutations, counted in `done`."""
    for _ in range(ops):
        project_id = rng.choice(project_ids)
        people = sorted(members[project_id])
        kind = rng.choice(["create", "update", "delete", "member"])
        if kind == "create":
            variables: dict[str, Any] = {"projectId": project_id, "title": "api task",
                                         "status": rng.choice(STATUSES).value}  # fmt: skip
            if people and rng.random() < 0.7:
                variables["assigneeId"] = rng.choice(people)
            result = await gql(CREATE_TASK, {"input": variables}, token=token)
        elif kind in ("update", "delete"):
            task_id = rng.randint(1, 120)
            if kind == "delete":
                result = await gql(DELETE_TASK, {"input": {"id": task_id}}, token=token)
            else:
                status = rng.choice(STATUSES).value
                result = await gql(UPDATE_TASK, {"input": {"id": task_id, "status": status}},
                                   token=token)  # fmt: skip
        else:
            if not people:
                continue
            user_id = rng.choice(people)
            member = {"projectId": project_id, "userId": user_id}
            result = await gql(REMOVE_MEMBER, {"input": member}, token=token)
            if not result.errors:
                members[project_id].discard(user_id)
                (await gql(ADD_MEMBER, {"input": member}, token=token)).ok()
                members[project_id].add(user_id)
        codes = set(result.codes)
        assert codes <= {"BAD_USER_INPUT", "NOT_FOUND", "CONFLICT"}, result.errors
        done[kind if not codes else f"{kind} refused"] += 1


async def test_counters_stay_exact_under_concurrent_writes_of_every_kind(
    session_factory: SessionFactory,
    make_user: MakeUser,
    admin: Any,
    admin_token: str,
    gql: Gql,
    settings: Settings,
) -> None:
    rng = random.Random(20261203)
    users, members = await build_world(session_factory, make_user, rng, tasks_each=20)
    await assert_exact(session_factory)  # the seed's inserts
    *kept, doomed = sorted(members)
    api_projects, data_projects = kept[:2], kept[2:]
    job = await submit_import(
        session_factory=session_factory,
        settings=settings,
        chunks=chunks(csv_rows(rng, members, kept, 400).encode()),
        file_name="concurrent.csv",
        created_by=admin.id,
    )
    # Each writer has its own sessions; the API writer and the data writers work on projects of
    # their own (so that the app's own membership checks cannot lock-cycle with them), the
    # import loads into all of them, and the doomed project is deleted while its tasks change.
    writers = Writers(session_factory, {p: set(members[p]) for p in data_projects}, users)
    doomed_tasks = Writers(session_factory, {doomed: set()}, users)

    touched = asyncio.Event()

    async def write_into_doomed_project() -> None:
        kinds = ("status", "title", "delete")
        await doomed_tasks.run(random.Random(5), [doomed], 10, kinds=kinds)
        touched.set()
        await doomed_tasks.run(random.Random(6), [doomed], 20, kinds=kinds)

    async def delete_doomed_project() -> None:
        await touched.wait()  # then while its tasks keep changing
        (await gql(DELETE_PROJECT, {"input": {"id": doomed}}, token=admin_token)).ok()

    async def run_import() -> None:
        small_batches = settings.model_copy(update={"import_batch_size": 37})
        assert await ImportRunner(session_factory, small_batches).run_until_idle() == 1

    api_members = {p: set(members[p]) for p in api_projects}
    api_done: Counter[str] = Counter()
    await asyncio.gather(
        api_writer(gql, admin_token, random.Random(4), api_members, api_projects, 40, api_done),
        writers.run(random.Random(1), data_projects, 40),
        writers.run(random.Random(2), data_projects, 40),
        writers.run(random.Random(3), data_projects, 40),
        write_into_doomed_project(),
        delete_doomed_project(),
        run_import(),
    )

    await assert_exact(session_factory)
    imported = await job_now(session_factory, job.id)
    assert imported.status == ImportStatus.SUCCEEDED, imported.message
    assert imported.rows_imported > 0
    assert imported.rows_imported + imported.rows_failed == 400
    async with session_factory() as session:
        in_doomed = sa.select(sa.func.count()).where(col(Task.project_id) == doomed)
        assert await session.scalar(in_doomed) == 0
    for kind in Writers.KINDS:
        assert writers.done[kind] > 0, writers.done
    assert writers.done["unassigned by removal"] > 0, writers.done
    assert doomed_tasks.done["status"] + doomed_tasks.done["delete"] > 0, doomed_tasks.done
    for kind in ("create", "update", "member"):
        assert api_done[kind] > 0, api_done


async def test_a_rolled_back_write_leaves_the_counters_as_they_were(
    session_factory: SessionFactory, make_user: MakeUser
) -> None:
    await build_world(session_factory, make_user, random.Random(7), tasks_each=5)
    before = await assert_exact(session_factory)

    async def write_then_fail() -> None:
        async with session_factory.begin() as session:
            await session.execute(sa.delete(Task).where(col(Task.id) % 2 == 0))
            await session.execute(sa.update(Task).values(status=TaskStatus.DONE))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await assert_exact(session_factory) == before


# --- the counters answer what count(*) answers ---------------------------------------------------


def filters(project_ids: list[int], user_ids: list[int]) -> list[TaskFilter]:
    """Every combination of the filter's fields over a few values, unknown and 0 ids included."""
    statuses: list[tuple[TaskStatus, ...] | None] = [
        None, (), (TaskStatus.PENDING,), (TaskStatus.IN_PROGRESS, TaskStatus.DONE)
    ]  # fmt: skip
    return [
        TaskFilter(project_id=p, statuses=s, assignee_id=a, unassigned=u)
        for p, s, a, u in product(
            [None, project_ids[0], project_ids[-1], 0, 999],
            statuses,
            [None, user_ids[0], user_ids[-1], 0, 999],
            [None, True, False],
        )
    ] + [TaskFilter(search="seed 1"), TaskFilter(search="seed", project_id=project_ids[0])]


async def test_counts_from_counters_equal_count_star_for_every_filter_and_scope(
    session_factory: SessionFactory, make_user: MakeUser
) -> None:
    users, members = await build_world(session_factory, make_user, random.Random(11), tasks_each=30)
    scopes = [ReadScope(None), ReadScope(users[0]), ReadScope(users[3]), ReadScope(0)]
    pairs = [(s, f) for s in scopes for f in filters(sorted(members), users)]
    for start in range(0, len(pairs), 150):  # SQLite allows 2,000 result columns
        chunk = pairs[start : start + 150]
        columns: list[Any] = []
        for scope, task_filter in chunk:
            count_star = sa.select(sa.func.count()).select_from(Task)
            count_star = count_star.where(*counters.task_conditions(scope, task_filter))
            columns += [counters.task_count(scope, task_filter), count_star.scalar_subquery()]
        async with session_factory() as session:
            row = (await session.execute(sa.select(*columns))).one()
        for i, (scope, task_filter) in enumerate(chunk):
            assert row[2 * i] == row[2 * i + 1], (scope, task_filter)
    assert len(pairs) > 1000


async def test_per_project_counts_equal_count_star(
    session_factory: SessionFactory, make_user: MakeUser
) -> None:
    users, members = await build_world(session_factory, make_user, random.Random(5), tasks_each=12)
    project_ids = sorted(members)
    for scope in (ReadScope(None), ReadScope(users[1]), ReadScope(users[6])):
        expected: dict[int, dict[TaskStatus, int]] = {p: {} for p in project_ids}
        grouped = (
            sa.select(col(Task.project_id), col(Task.status), sa.func.count())
            .where(*counters.task_conditions(scope, TaskFilter()))
            .group_by(col(Task.project_id), col(Task.status))
        )
        by_status = counters.task_counts_by_status(scope, col(Project.id))
        correlated = sa.select(col(Project.id), *by_status.values()).order_by(col(Project.id))
        async with session_factory() as session:
            for project_id, status, n in await session.execute(grouped):
                expected[project_id][TaskStatus(status)] = n
            embedded = {
                row[0]: {s: n for s, n in zip(by_status, row[1:], strict=True) if n}
                for row in await session.execute(correlated)
            }
            batched = await tasks.count_by_status(
                session=session, scope=scope, project_ids=[*project_ids, 999]
            )
            totals = await session.execute(counters.project_totals(scope, project_ids))
        assert embedded == expected
        assert batched == {**expected, 999: {}}
        assert dict(totals.all()) == {p: sum(c.values()) for p, c in expected.items() if c}


async def test_nested_task_pages_take_their_totals_from_the_counters(
    session_factory: SessionFactory, make_user: MakeUser
) -> None:
    """Project.tasks totals on first pages and after a cursor (empty pages too) are count(*)'s."""
    users, members = await build_world(session_factory, make_user, random.Random(3), tasks_each=6)
    project_ids = sorted(members)
    async with session_factory.begin() as session:  # one project with no tasks at all
        await session.execute(sa.delete(Task).where(col(Task.project_id) == project_ids[0]))
    async with session_factory() as session:
        middle = (await session.scalar(sa.select(sa.func.max(col(Task.id))))) or 0
        for scope in (ReadScope(None), ReadScope(users[2])):
            counted = (
                sa.select(col(Task.project_id), sa.func.count())
                .where(*counters.task_conditions(scope, TaskFilter()))
                .group_by(col(Task.project_id))
            )
            expected = dict.fromkeys(project_ids, 0)
            expected.update(dict((await session.execute(counted)).all()))
            for after in (None, Keyset(None, middle // 2), Keyset(None, 10**6)):
                request = PageRequest(first=2, after=after, with_total=True)
                pages = await tasks.list_project_tasks(
                    session=session, scope=scope, project_ids=project_ids, request=request
                )
                assert {p: page.total for p, page in pages.items()} == expected, (scope, after)


async def test_task_lists_read_their_counts_from_the_counters(
    session_factory: SessionFactory, make_user: MakeUser
) -> None:
    """Falsify the counters: totals and counts change with them, except a search's total."""
    _, members = await build_world(session_factory, make_user, random.Random(9), tasks_each=4)
    project_ids = sorted(members)
    async with session_factory.begin() as session:
        await session.execute(sa.update(TaskCount).values(n=col(TaskCount.n) + 1000))
    everything, request = ReadScope(None), PageRequest(first=1, with_total=True)
    async with session_factory() as session:
        done = TaskFilter(statuses=(TaskStatus.DONE,))
        listed = await tasks.list_tasks(
            session=session, scope=everything, task_filter=done, request=request
        )
        searched = await tasks.list_tasks(
            session=session,
            scope=everything,
            task_filter=TaskFilter(search="seed"),
            request=request,
        )
        nested = await tasks.list_project_tasks(
            session=session, scope=everything, project_ids=project_ids, request=request
        )
        by_status = await tasks.count_by_status(
            session=session, scope=everything, project_ids=project_ids
        )
    assert (listed.total or 0) >= 1000
    assert searched.total == 4 * len(project_ids)
    for project_id in project_ids:
        assert (nested[project_id].total or 0) >= 1000
        assert sum(by_status[project_id].values()) >= 1000


# --- the migration's backfill --------------------------------------------------------------------


@pytest.fixture
async def scratch_url(backend: str, database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own, to migrate step by step."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_backfill"
    server = make_engine(database_url)

    async def recreate(create: bool) -> None:
        async with server.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    await recreate(True)
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await recreate(False)
        await server.dispose()


async def test_the_migration_backfills_existing_tasks(scratch_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, scratch_url, "0003")
    scratch = make_engine(scratch_url)
    try:
        rng = random.Random(1)
        now = datetime.now(UTC)
        async with scratch.begin() as conn:
            project = {"description": "", "created_at": now, "updated_at": now}
            await conn.execute(sa.insert(Project), [{**project, "name": f"P{i}"} for i in range(3)])
            project_ids = list((await conn.execute(sa.select(col(Project.id)))).scalars())
            task = {"title": "t", "description": "", "created_at": now, "updated_at": now}
            await conn.execute(
                sa.insert(Task),
                [
                    {**task, "project_id": rng.choice(project_ids), "status": rng.choice(STATUSES)}
                    for _ in range(50)
                ],
            )
        await asyncio.to_thread(migrate.upgrade, scratch_url)
        counted = await assert_exact(make_session_factory(scratch))
        assert sum(n for (p, _, _), n in counted.items() if p == counters.ALL_PROJECTS) == 50
    finally:
        await scratch.dispose()


# --- a runner killed mid-job -------------------------------------------------------------------


def worker_env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQL_", "JWT_", "IMPORT_"))}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=settings.database_url,
        JWT_SECRET_KEY=settings.jwt_secret_key,
        UPLOAD_DIR=str(settings.upload_dir),
        LOG_LEVEL="INFO",
        **overrides,
    )
    return env


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        command = [sys.executable, "-m", "taskql.cli", "worker", *args]
        return subprocess.Popen(command, env=env, stdout=out, stderr=out)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def job_now(session_factory: SessionFactory, job_id: str) -> ImportJob:
    async with session_factory() as session:
        job = await session.get(ImportJob, job_id)
    assert job is not None
    return job


@pytest.mark.slow
async def test_counters_are_exact_after_a_runner_is_killed_mid_job_and_the_job_resumes(
    session_factory: SessionFactory,
    make_user: MakeUser,
    admin: Any,
    settings: Settings,
    tmp_path: Path,
) -> None:
    rng = random.Random(42)
    _, members = await build_world(session_factory, make_user, rng, tasks_each=3)
    content = csv_rows(rng, members, sorted(members), 20_000).encode()
    job = await submit_import(session_factory=session_factory, settings=settings,
                              chunks=chunks(content), file_name="big.csv",
                              created_by=admin.id)  # fmt: skip
    env = worker_env(settings, IMPORT_BATCH_SIZE="100", IMPORT_HEARTBEAT_SECONDS="0.2",
                     IMPORT_STALE_SECONDS="1.5", IMPORT_POLL_SECONDS="0.1")  # fmt: skip
    first = start_worker(env, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 60
        while (await job_now(session_factory, job.id)).rows_processed < 3000:
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            await asyncio.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
    finally:
        stop(first)
    killed = await job_now(session_factory, job.id)
    assert killed.status == ImportStatus.RUNNING
    assert killed.rows_processed < 20_000
    await assert_exact(session_factory)  # what committed, counted with it

    await asyncio.sleep(2)  # the dead runner's heartbeat goes stale
    second = start_worker(env, tmp_path / "second.log", "--until-idle")
    try:
        assert await asyncio.to_thread(second.wait, 120) == 0
    finally:
        stop(second)
    resumed = await job_now(session_factory, job.id)
    assert (resumed.status, resumed.attempts) == (ImportStatus.SUCCEEDED, 2)
    after = await assert_exact(session_factory)
    seeded = 3 * len(members)
    assert sum(n for (p, _, _), n in after.items() if p == 0) == seeded + resumed.rows_imported
