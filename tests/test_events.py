"""Live events: taskEvents and projectEvents over real WebSockets against real `taskql serve`
processes (two on PostgreSQL, sharing the database), the LISTEN connection's recovery, rolled-back
writes, back-pressure and limits."""

import asyncio
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.services import event_hub
from core.settings import Settings
from db import events, tasks
from db.engine import SessionFactory
from db.listener import APPLICATION_NAME, OVERFLOW, RECONNECTED, Inbox, LocalHub, Missed
from db.models import TaskStatus, User
from tests.support.accounts import TokenFor
from tests.support.events import (
    CREATE_TASK,
    DELETE_TASK,
    PROJECT_EVENTS,
    UPDATE_TASK,
    Subscriber,
    mutate,
    until_live,
)
from tests.support.imports import generate_csv, upload_job
from tests.support.processes import process_env, taskql_server
from tests.support.world import ImportWorld, World, pk

pytestmark = pytest.mark.slow

UPDATE_PROJECT = "mutation($i: UpdateProjectInput!) { updateProject(input: $i) { project { id } } }"


@pytest.fixture
def servers(settings: Settings, backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Process A (writes) and process B (subscribers): two on PostgreSQL, one on SQLite, whose
    events stay in their process."""
    env = process_env(
        settings.database_url,
        settings.upload_dir,
        RUN_IMPORT_WORKER="false",
        EVENTS_CHECK_SECONDS="0.5",
        SUBSCRIPTIONS_PER_CONNECTION="3",
    )
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with taskql_server(env, logs[0]) as a:
        if backend == "sqlite":
            yield a, a
        else:
            with taskql_server(env, logs[1]) as b:
                yield a, b
    for log in logs:
        if log.exists():
            assert "Traceback" not in log.read_text(), log.read_text()


async def test_a_write_on_one_process_reaches_subscribers_on_another_as_they_may_see_it(
    servers: tuple[str, str], world: World
) -> None:
    a, b = servers
    admin_token, user_token = world.token("admin"), world.token("assignee")
    assert admin_token is not None
    assert user_token is not None
    spec, review, other = pk(world.spec), pk(world.review), pk(world.other)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=a, timeout=10))

        async def update(task_id: int, **changes: object) -> float:
            started = time.monotonic()
            await mutate(http, UPDATE_TASK, {"input": {"id": task_id, **changes}}, admin_token)
            return started

        admin = await Subscriber.open(stack, b, admin_token)
        user = await Subscriber.open(stack, b, user_token)

        async def poke(task_id: int) -> None:
            await update(task_id, title="probe")

        await until_live(admin, lambda: poke(review))
        await until_live(user, lambda: poke(spec))
        await admin.drain()

        # A task the USER does not see: the admin hears of it, the USER does not.
        started = await update(review, status="IN_PROGRESS")
        event = await admin.event()
        assert time.monotonic() - started < 1.0
        assert event["kind"] == "UPDATED"
        assert (event["taskId"], event["changedFields"]) == (review, ["status"])
        assert event["task"]["status"] == "IN_PROGRESS"
        assert event["actor"] == {"id": pk(world.admin)}

        # Assigned to the USER: it appears for them, in under a second.
        started = await update(review, assigneeId=pk(world.assignee))
        event = await user.event(seconds=1.0)
        assert time.monotonic() - started < 1.0
        assert event["kind"] == "CREATED"
        assert event["changedFields"] == ["assigneeId"]
        assert event["task"]["assignee"] == {"id": pk(world.assignee)}
        assert (await admin.event())["kind"] == "UPDATED"

        # Assigned away: it disappears for them (only its id), the admin sees an update.
        await update(review, assigneeId=pk(world.member))
        event = await user.event()
        assert (event["kind"], event["taskId"], event["task"]) == ("DELETED", review, None)
        assert (await admin.event())["task"]["assignee"] == {"id": pk(world.member)}

        # Someone else's task in another project: the admin only.
        await update(other, title="Zephyr's")
        assert (await admin.event())["taskId"] == other

        # Created for and deleted from the USER.
        created = await mutate(
            http,
            CREATE_TASK,
            {"input": {"projectId": pk(world.apollo), "title": "New",
                       "assigneeId": pk(world.assignee)}},
            admin_token,
        )  # fmt: skip
        new_id = created["createTask"]["task"]["id"]
        event = await user.event()
        assert (event["kind"], event["task"]["title"]) == ("CREATED", "New")
        await mutate(http, DELETE_TASK, {"input": {"id": new_id}}, admin_token)
        event = await user.event()
        assert (event["kind"], event["taskId"], event["task"]) == ("DELETED", new_id, None)
        assert [e["kind"] for e in [await admin.event(), await admin.event()]] == [
            "CREATED",
            "DELETED",
        ]
        await user.silent()  # nothing of the others' tasks ever reached the USER
        await admin.silent()


async def test_member_removal_and_project_deletion_reach_task_and_project_subscribers(
    servers: tuple[str, str], world: World
) -> None:
    a, b = servers
    admin_token, user_token = world.token("admin"), world.token("assignee")
    assert admin_token is not None
    assert user_token is not None
    apollo = pk(world.apollo)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=a, timeout=10))
        user = await Subscriber.open(stack, b, user_token)
        projects_user = await Subscriber.open(stack, b, user_token, PROJECT_EVENTS)
        projects_outsider = await Subscriber.open(
            stack, b, world.token("non_member"), PROJECT_EVENTS
        )

        async def rename(name: str) -> None:
            await mutate(http, UPDATE_PROJECT, {"i": {"id": apollo, "name": name}}, admin_token)

        async def poke() -> None:
            spec = {"input": {"id": pk(world.spec), "title": "probe"}}
            await mutate(http, UPDATE_TASK, spec, admin_token)

        await until_live(user, poke)
        await until_live(projects_user, lambda: rename("Apollo 2"))
        await rename("Apollo 3")
        event = await projects_user.event()
        assert (event["kind"], event["changedFields"], event["project"]) == (
            "UPDATED", ["name"], {"id": apollo, "name": "Apollo 3"}
        )  # fmt: skip
        await projects_outsider.silent()  # not a member: hears nothing of Apollo

        remove = """mutation($i: ProjectMemberInput!) {
          removeProjectMember(input: $i) { unassignedTaskCount } }"""
        await mutate(http, remove, {"i": {"projectId": apollo, "userId": pk(world.assignee)}},
                     admin_token)  # fmt: skip
        event = await user.event()
        assert (event["kind"], event["taskId"], event["changedFields"]) == (
            "DELETED", pk(world.spec), ["assigneeId"]
        )  # fmt: skip
        event = await projects_user.event()
        assert (event["kind"], event["member"]) == ("MEMBER_REMOVED", {"id": pk(world.assignee)})

        # The USER's tasks are elsewhere now; an admin sees one PROJECT_DELETED event.
        admin = await Subscriber.open(stack, b, admin_token)
        await until_live(admin, poke)
        delete = "mutation($i: DeleteProjectInput!) { deleteProject(input: $i) { deletedId } }"
        await mutate(http, delete, {"i": {"id": apollo}}, admin_token)
        event = await admin.event()
        assert (event["kind"], event["projectId"], event["taskCount"]) == (
            "PROJECT_DELETED", apollo, 2
        )  # fmt: skip
        await admin.silent()
        await user.silent()
        await projects_user.silent()  # no longer a member: the deletion is not theirs to hear


async def test_a_connection_holds_at_most_its_subscriptions(
    servers: tuple[str, str], world: World
) -> None:
    _, b = servers
    async with AsyncExitStack() as stack:
        subscriber = await Subscriber.open(stack, b, world.token("admin"))
        await subscriber.subscribe("2", PROJECT_EVENTS)
        await subscriber.subscribe("3", PROJECT_EVENTS)
        await subscriber.subscribe("4", PROJECT_EVENTS)  # SUBSCRIPTIONS_PER_CONNECTION=3
        message = await subscriber.message()
        assert message["id"] == "4", message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"


async def test_anonymous_subscribers_are_refused(servers: tuple[str, str]) -> None:
    _, b = servers
    async with AsyncExitStack() as stack:
        subscriber = await Subscriber.open(stack, b, None)
        message = await subscriber.message()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def _next(inbox: Inbox, seconds: float = 5) -> events.Event | Missed:
    return await asyncio.wait_for(inbox.next(), seconds)


async def test_a_rolled_back_write_sends_no_event(
    settings: Settings, engine: AsyncEngine, session_factory: SessionFactory, world: World
) -> None:
    hub = event_hub(settings, engine)
    try:
        async with hub.subscribe([events.Topic.TASK], lambda e: True, queue_size=10) as inbox:
            async with session_factory() as session:
                await session.begin()
                await tasks.create_task(
                    session=session, project_id=pk(world.apollo), title="Never",
                    description="", status=TaskStatus.PENDING, assignee_id=None,
                    created_by=pk(world.admin),
                )  # fmt: skip
                await session.rollback()
            async with session_factory() as session, session.begin():
                kept = await tasks.update_task(
                    session=session, task_id=pk(world.spec), changes={"title": "Kept"}
                )
            assert kept is not None
            event = await _next(inbox)
            assert isinstance(event, events.Event)
            assert (event.kind, event.subject, event.fields) == (
                events.Kind.UPDATED, pk(world.spec), ("title",)
            )  # fmt: skip
            assert inbox.next_nowait() is None
            await asyncio.sleep(0.3)
            assert inbox.next_nowait() is None  # the rolled-back CREATED never came
    finally:
        await hub.stop()


async def test_a_full_inbox_drops_its_events_for_one_resync() -> None:
    hub = LocalHub(max_subscribers=2)
    async with (
        hub.subscribe([events.Topic.TASK], lambda e: True, queue_size=3) as slow,
        hub.subscribe([events.Topic.TASK], lambda e: True, queue_size=100) as fast,
    ):
        for n in range(10):
            hub.deliver([events.Event(events.Topic.TASK, events.Kind.UPDATED, n, events.now())])
        assert [(await _next(fast)).subject for _ in range(10)] == list(range(10))  # type: ignore[union-attr]
        # Full at the 4th event: dropped for a RESYNC; full again at the 7th and the 10th.
        assert slow.next_nowait() == Missed(OVERFLOW)
        assert slow.next_nowait() is None
        assert slow.dropped == 7
        with pytest.raises(Exception, match="maximum of 2"):
            async with hub.subscribe([events.Topic.TASK], lambda e: True, queue_size=1):
                pass


async def test_the_listen_connection_comes_back_and_subscribers_are_told(
    servers: tuple[str, str], world: World, backend: str, engine: AsyncEngine
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no LISTEN connection")
    a, b = servers
    admin_token = world.token("admin")
    assert admin_token is not None
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=a, timeout=10))

        async def poke() -> None:
            spec = {"input": {"id": pk(world.spec), "title": "probe"}}
            await mutate(http, UPDATE_TASK, spec, admin_token)

        subscriber = await Subscriber.open(stack, b, admin_token)
        await until_live(subscriber, poke)
        async with engine.connect() as conn:
            database = (await conn.execute(sa.text("SELECT current_database()"))).scalar_one()
            terminated = await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = :db"
                ),
                {"name": APPLICATION_NAME, "db": database},
            )
            assert len(terminated.all()) == 2  # processes A and B, one LISTEN connection each
        event = await subscriber.event(seconds=10)
        assert event["kind"] == "RESYNC"
        assert "may have missed" in event["message"]
        assert RECONNECTED  # the reason's name, as the hub logs it
        await poke()
        event = await subscriber.event()
        assert (event["kind"], event["taskId"]) == ("UPDATED", pk(world.spec))


PROGRESS = "subscription($id: ID!) { importJobProgress(id: $id) { status rowsImported } }"


async def test_an_import_sends_one_event_per_batch_and_its_progress_to_other_processes(
    settings: Settings,
    backend: str,
    tmp_path: Path,
    import_world: ImportWorld,
    session_factory: SessionFactory,
    admin_token: str,
    token_for: TokenFor,
) -> None:
    env = process_env(
        settings.database_url,
        settings.upload_dir,
        RUN_IMPORT_WORKER="false",
        IMPORT_BATCH_SIZE="500",
        IMPORT_POLL_SECONDS="0.2",
    )
    async with session_factory() as session:
        member = await session.get(User, import_world.member_id)
        outsider = await session.get(User, import_world.outsider_id)
    assert member is not None
    assert outsider is not None
    runner_env = {**env, "RUN_IMPORT_WORKER": "true"}
    with (
        taskql_server(runner_env, tmp_path / "a.log") as a,
        taskql_server(env, tmp_path / "b.log") as b,
    ):
        if backend == "sqlite":
            b = a  # one process: SQLite's events stay in it
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=a, timeout=30))
            admin = await Subscriber.open(stack, b, admin_token)
            mine = await Subscriber.open(stack, b, token_for(member))
            theirs = await Subscriber.open(stack, b, token_for(outsider))

            async def poke() -> None:
                task = {"projectId": import_world.project_id, "title": "probe",
                        "assigneeId": import_world.member_id}  # fmt: skip
                await mutate(http, CREATE_TASK, {"input": task}, admin_token)

            await until_live(admin, poke)
            await until_live(mine, poke)
            await admin.drain()
            job_id = await upload_job(
                http, generate_csv(2_000, world=import_world).content, token=admin_token
            )
            progress = await Subscriber.open(stack, b, admin_token, PROGRESS, {"id": job_id})
            states: list[dict[str, Any]] = []
            while not states or states[-1]["status"] not in ("SUCCEEDED", "FAILED"):
                states.append(await progress.event(seconds=30))
            assert states[-1] == {"status": "SUCCEEDED", "rowsImported": 1_900}
            assert (await progress.message())["type"] == "complete"

            for subscriber in (admin, mine):
                batches = [await subscriber.event() for _ in range(4)]  # 500 rows a batch
                assert {e["kind"] for e in batches} == {"IMPORTED"}
                assert {e["projectId"] for e in batches} == {import_world.project_id}
                assert sum(e["taskCount"] for e in batches) == 1_900
                await subscriber.silent()
            await theirs.silent()


async def test_a_user_added_to_a_project_starts_hearing_of_it(
    servers: tuple[str, str], world: World
) -> None:
    a, b = servers
    admin_token = world.token("admin")
    assert admin_token is not None
    apollo = pk(world.apollo)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=a, timeout=10))
        outsider = await Subscriber.open(stack, b, world.token("non_member"), PROJECT_EVENTS)
        admin = await Subscriber.open(stack, b, admin_token, PROJECT_EVENTS)

        async def rename(name: str) -> None:
            await mutate(http, UPDATE_PROJECT, {"i": {"id": apollo, "name": name}}, admin_token)

        await until_live(admin, lambda: rename("Apollo 2"))
        await outsider.silent()  # the same renames, not theirs to hear
        add = "mutation($i: ProjectMemberInput!) { addProjectMember(input: $i) { user { id } } }"
        joining = {"projectId": apollo, "userId": pk(world.outsider)}
        await mutate(http, add, {"i": joining}, admin_token)
        event = await outsider.event()
        assert (event["kind"], event["project"], event["member"]) == (
            "MEMBER_ADDED", {"id": apollo, "name": "Apollo 2"}, {"id": pk(world.outsider)}
        )  # fmt: skip
        await rename("Apollo 3")
        event = await outsider.event()
        assert (event["kind"], event["project"]["name"]) == ("UPDATED", "Apollo 3")


async def test_a_process_holds_at_most_its_subscriptions(
    settings: Settings, tmp_path: Path, world: World
) -> None:
    env = process_env(
        settings.database_url,
        settings.upload_dir,
        RUN_IMPORT_WORKER="false",
        SUBSCRIPTIONS_PER_PROCESS="2",
    )
    admin_token = world.token("admin")
    assert admin_token is not None
    with taskql_server(env, tmp_path / "server.log") as url:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))

            async def poke() -> None:
                spec = {"input": {"id": pk(world.spec), "title": "probe"}}
                await mutate(http, UPDATE_TASK, spec, admin_token)

            for _ in range(2):  # each on its own connection
                await until_live(await Subscriber.open(stack, url, admin_token), poke)
            third = await Subscriber.open(stack, url, admin_token)
            message = await third.message()
            payload = message["payload"]
            errors = payload if message["type"] == "error" else payload["errors"]
            assert errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            assert "maximum of 2" in errors[0]["message"]
