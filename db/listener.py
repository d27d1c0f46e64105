"""Event hubs: the process's subscribers and the events that reach them.

`PostgresHub` holds one dedicated asyncpg connection per process that LISTENs on the events
channel (db/events.py), shared by every subscriber, and opens it again after it is lost (a
database restart, a terminated backend); subscribers are then told that they may have missed
events. `LocalHub` is SQLite's: events committed in this process, nothing to listen to.

Each subscriber has an `Inbox`: a bounded queue fed without waiting, so a slow subscriber never
blocks the others or the writer. A full inbox drops what it holds and keeps a single `Missed`.
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa

from core.errors import TooManySubscriptions
from db.events import CHANNEL, Event, Topic, database_key, on_local_commit

logger = logging.getLogger("taskql.events")

OVERFLOW = "overflow"
RECONNECTED = "reconnected"
APPLICATION_NAME = "taskql-events"  # how the LISTEN connection shows in pg_stat_activity


@dataclass(frozen=True, slots=True)
class Missed:
    """Events may have been lost: the subscriber should read the current state again."""

    reason: str  # OVERFLOW or RECONNECTED


Item = Event | Missed
Wants = Callable[[Event], bool]


class Inbox:
    """One subscriber's bounded queue of events it wants (decided as they arrive, by `wants`)."""

    def __init__(self, topics: frozenset[Topic], wants: Wants, size: int) -> None:
        self.topics = topics
        self.wants = wants
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def offer(self, item: Item) -> None:
        """Queue `item` without waiting; when full, drop everything for one `Missed`."""
        if isinstance(item, Event):
            if item.topic not in self.topics:
                return
            try:
                if not self.wants(item):
                    return
            except Exception:  # a filter bug must not stop delivery to the others
                logger.exception("event filter failed")
                return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self.dropped += isinstance(self._queue.get_nowait(), Event)
            self._queue.put_nowait(Missed(OVERFLOW))

    async def next(self) -> Item:
        return await self._queue.get()

    def next_nowait(self) -> Item | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None


class EventHub:
    """Fans events out to this process's inboxes; at most `max_subscribers` of them."""

    crosses_processes = False

    def __init__(self, *, max_subscribers: int) -> None:
        self.max_subscribers = max_subscribers
        self._inboxes: set[Inbox] = set()

    @property
    def subscribers(self) -> int:
        return len(self._inboxes)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, topics: Iterable[Topic], wants: Wants, *, queue_size: int
    ) -> AsyncIterator[Inbox]:
        """An inbox for the events of `topics` that `wants` keeps, while the block runs."""
        if len(self._inboxes) >= self.max_subscribers:
            raise TooManySubscriptions(
                f"This server process holds its maximum of {self.max_subscribers} "
                "subscriptions: retry later."
            )
        inbox = Inbox(frozenset(topics), wants, queue_size)
        self._inboxes.add(inbox)
        try:
            await self.ready()
            yield inbox
        finally:
            self._inboxes.discard(inbox)

    async def ready(self) -> None:
        """Wait until events can arrive (the LISTEN connection is up)."""

    async def start(self) -> None:
        """Start receiving events."""

    async def stop(self) -> None:
        """Stop receiving events."""

    def deliver(self, items: Iterable[Item]) -> None:
        for item in items:
            for inbox in list(self._inboxes):
                inbox.offer(item)


class LocalHub(EventHub):
    """SQLite: the events committed in this process (db/events.py delivers them here)."""


_local_hubs: dict[str, LocalHub] = {}


def _deliver_local(key: str, events: list[Event]) -> None:
    hub = _local_hubs.get(key)
    if hub is not None:
        hub.deliver(events)


on_local_commit(_deliver_local)


def local_hub(url: sa.URL, *, max_subscribers: int) -> LocalHub:
    """The process's hub for this SQLite database (one per database, shared by its apps)."""
    key = database_key(url)
    hub = _local_hubs.get(key)
    if hub is None:
        hub = _local_hubs[key] = LocalHub(max_subscribers=max_subscribers)
    hub.max_subscribers = max_subscribers
    return hub


def asyncpg_dsn(url: sa.URL) -> str:
    """A SQLAlchemy `postgresql+asyncpg://` URL as asyncpg's own DSN."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _set_lost(lost: asyncio.Event, _conn: object) -> None:
    lost.set()


class PostgresHub(EventHub):
    """One LISTEN connection for the process, re-opened whenever it is lost."""

    crosses_processes = True

    def __init__(
        self,
        dsn: str,
        *,
        max_subscribers: int,
        check_seconds: float = 5.0,
        connect_timeout: float = 5.0,
        channel: str = CHANNEL,
    ) -> None:
        super().__init__(max_subscribers=max_subscribers)
        self.dsn = dsn
        self.channel = channel
        self.check_seconds = check_seconds
        self.connect_timeout = connect_timeout
        self.backend_pid: int | None = None
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="taskql-events-listener")

    async def ready(self) -> None:
        await self.start()
        # Subscribing while the database is down still works: the RECONNECTED notice follows.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), self.connect_timeout)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = Event.decode(payload)
        except Exception:
            logger.warning("ignoring an unreadable event payload: %.200s", payload)
            return
        self.deliver([event])

    async def _run(self) -> None:
        delay = 0.1
        connected_before = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn,
                    timeout=self.connect_timeout,
                    server_settings={"application_name": APPLICATION_NAME},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_lost, lost))
                await conn.add_listener(self.channel, self._on_notify)
                self.backend_pid = conn.get_server_pid()
                self._up.set()
                delay = 0.1
                if connected_before:
                    self.reconnects += 1
                    logger.info("events: LISTEN connection re-established")
                    self.deliver([Missed(RECONNECTED)])
                connected_before = True
                await self._watch(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("events: LISTEN connection failed: %s", exc)
            finally:
                self._up.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost: closed, or not answering a periodic check."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.check_seconds)
                return
            await asyncio.wait_for(conn.fetchval("SELECT 1"), self.connect_timeout)
