"""DataLoaders, built per request. Each batch opens its own session (sibling fields run
concurrently, and one AsyncSession cannot serve two operations at once).

Loaders whose answer depends on who asks take the caller's ReadScope in their key.
"""

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from db import projects, tasks, users
from db.engine import SessionFactory
from db.models import Project, Task, TaskStatus, User
from db.paging import Page, PageRequest
from db.records import ProjectRecord, UserRecord
from db.scopes import ReadScope

K = TypeVar("K")
V = TypeVar("V")
G = TypeVar("G")

ProjectPageKey = tuple[int, PageRequest]  # (project id, page)
ScopedProjectPageKey = tuple[int, ReadScope, PageRequest]
ScopedProjectKey = tuple[int, ReadScope]
PairKey = tuple[int, int]  # (the caller's user id, another id)
StatusCounts = dict[TaskStatus, int]


class SharedLoader(DataLoader[K, V]):
    """A DataLoader whose loads survive the cancellation of one of their waiters.

    A load's future is shared by every resolver that asks for the same key. When graphql-core
    cancels one of them (a sibling failed and nulled their parent), a plain await would cancel
    the shared future too, and the others would get a CancelledError instead of their value.
    """

    def load(self, key: K) -> "asyncio.Future[V]":
        return asyncio.shield(super().load(key))


class Loaders:
    """Every loader of one request."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._session_factory = session_factory
        # List pages prime these with the plain records they read (db/records.py).
        self.user_by_id = SharedLoader[int, User | UserRecord | None](load_fn=self._users_by_id)
        self.project_by_id = SharedLoader[int, Project | ProjectRecord | None](
            load_fn=self._projects_by_id
        )
        self.task_by_id = SharedLoader[int, Task | None](load_fn=self._tasks_by_id)
        self.members_by_project = SharedLoader[ProjectPageKey, Page[User]](
            load_fn=self._members_by_project
        )
        self.projects_by_member = SharedLoader[ProjectPageKey, Page[Project]](
            load_fn=self._projects_by_member
        )
        self.tasks_by_project = SharedLoader[ScopedProjectPageKey, Page[Task]](
            load_fn=self._tasks_by_project
        )
        self.task_counts_by_project = SharedLoader[ScopedProjectKey, StatusCounts](
            load_fn=self._task_counts_by_project
        )
        # (user id, project id) -> is that user a member of that project?
        self.membership_by_user_project = SharedLoader[PairKey, bool](load_fn=self._memberships)
        # (user id, other user id) -> do they share a project?
        self.shared_project_by_user_pair = SharedLoader[PairKey, bool](load_fn=self._shared)
        # project id -> its members' ids (live events ask it once for all their subscribers)
        self.member_ids_by_project = SharedLoader[int, frozenset[int]](load_fn=self._member_ids)

    async def _batch(
        self,
        keys: Sequence[K],
        group: Callable[[K], G],
        item: Callable[[K], int],
        fetch: Callable[[AsyncSession, G, list[int]], Awaitable[dict[int, V]]],
    ) -> list[V]:
        """Answer keys that share a `group` (a page, a scope, a user) with one query per group."""
        groups: dict[G, list[int]] = defaultdict(list)
        for key in keys:
            groups[group(key)].append(item(key))
        found: dict[tuple[G, int], V] = {}
        async with self._session_factory() as session:
            for shared, ids in groups.items():
                answers = await fetch(session, shared, list(dict.fromkeys(ids)))
                found.update({(shared, i): v for i, v in answers.items()})
        return [found[(group(key), item(key))] for key in keys]

    async def _users_by_id(self, ids: Sequence[int]) -> list[User | UserRecord | None]:
        async with self._session_factory() as session:
            found = {u.id: u for u in await users.get_users(session=session, user_ids=ids)}
        return [found.get(i) for i in ids]

    async def _projects_by_id(self, ids: Sequence[int]) -> list[Project | ProjectRecord | None]:
        async with self._session_factory() as session:
            rows = await projects.get_projects(session=session, project_ids=ids)
        found = {p.id: p for p in rows}
        return [found.get(i) for i in ids]

    async def _tasks_by_id(self, ids: Sequence[int]) -> list[Task | None]:
        async with self._session_factory() as session:
            rows = await tasks.get_tasks(session=session, task_ids=ids)
        found: dict[int | None, Task] = {}
        # The task's project and assignee came in the same statement: prime their loaders.
        for task, project, assignee in rows:
            found[task.id] = task
            if project is not None and project.id is not None:
                self.project_by_id.prime(project.id, project)
            if assignee is not None and assignee.id is not None:
                self.user_by_id.prime(assignee.id, assignee)
        return [found.get(i) for i in ids]

    async def _member_ids(self, ids: Sequence[int]) -> list[frozenset[int]]:
        async with self._session_factory() as session:
            found = await projects.member_ids(session=session, project_ids=ids)
        return [found[i] for i in ids]

    async def _members_by_project(self, keys: Sequence[ProjectPageKey]) -> list[Page[User]]:
        async def fetch(
            session: AsyncSession, request: PageRequest, ids: list[int]
        ) -> dict[int, Page[User]]:
            return await projects.list_members(session=session, project_ids=ids, request=request)

        return await self._batch(keys, lambda k: k[1], lambda k: k[0], fetch)

    async def _projects_by_member(self, keys: Sequence[ProjectPageKey]) -> list[Page[Project]]:
        async def fetch(
            session: AsyncSession, request: PageRequest, ids: list[int]
        ) -> dict[int, Page[Project]]:
            return await projects.list_projects_of_members(
                session=session, user_ids=ids, request=request
            )

        return await self._batch(keys, lambda k: k[1], lambda k: k[0], fetch)

    async def _tasks_by_project(self, keys: Sequence[ScopedProjectPageKey]) -> list[Page[Task]]:
        async def fetch(
            session: AsyncSession, shared: tuple[ReadScope, PageRequest], ids: list[int]
        ) -> dict[int, Page[Task]]:
            scope, request = shared
            return await tasks.list_project_tasks(
                session=session, scope=scope, project_ids=ids, request=request
            )

        return await self._batch(keys, lambda k: (k[1], k[2]), lambda k: k[0], fetch)

    async def _task_counts_by_project(self, keys: Sequence[ScopedProjectKey]) -> list[StatusCounts]:
        async def fetch(
            session: AsyncSession, scope: ReadScope, ids: list[int]
        ) -> dict[int, StatusCounts]:
            return await tasks.count_by_status(session=session, scope=scope, project_ids=ids)

        return await self._batch(keys, lambda k: k[1], lambda k: k[0], fetch)

    async def _memberships(self, keys: Sequence[PairKey]) -> list[bool]:
        async def fetch(session: AsyncSession, user_id: int, ids: list[int]) -> dict[int, bool]:
            found = await projects.memberships(session=session, user_id=user_id, project_ids=ids)
            return {i: i in found for i in ids}

        return await self._batch(keys, lambda k: k[0], lambda k: k[1], fetch)

    async def _shared(self, keys: Sequence[PairKey]) -> list[bool]:
        async def fetch(session: AsyncSession, user_id: int, ids: list[int]) -> dict[int, bool]:
            found = await projects.users_sharing_a_project(
                session=session, user_id=user_id, other_ids=ids
            )
            return {i: i in found for i in ids}

        return await self._batch(keys, lambda k: k[0], lambda k: k[1], fetch)
