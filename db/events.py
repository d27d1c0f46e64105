"""Change events: what a write changed, published inside the writing transaction.

On PostgreSQL an event is a `NOTIFY` (`SELECT pg_notify(CHANNEL, payload)`) issued in the write's
own transaction, so the database sends it when, and only when, the write commits; every process
reads it back on its LISTEN connection (db/listener.py). On SQLite (one process) the events wait
in the session until it commits, then go to the process's in-memory hub; a rollback drops them.

A payload is compact: ids, the names of the fields that changed, who and when. Subscribers fetch
the rows themselves, so what they see is the database's current state, filtered for them.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

CHANNEL = "taskql_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; lists of ids beyond this budget are
# left out and the event says so (`partial`).
PAYLOAD_MAX_BYTES = 7000
_PENDING = "taskql_pending_events"
_HOOKED = "taskql_events_hooked"


class Topic(StrEnum):
    TASK = "task"
    PROJECT = "project"
    IMPORT = "import"


class Kind(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    IMPORTED = "IMPORTED"  # one committed import batch, per project
    PROJECT_DELETED = "PROJECT_DELETED"  # on the task topic: every task of a project went
    MEMBER_ADDED = "MEMBER_ADDED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    PROGRESS = "PROGRESS"  # an import job changed


Place = tuple[int | None, int | None]  # a task's (project id, assignee id); (None, None): none


@dataclass(slots=True)
class Event:
    """One change. `before`/`after` place a task (so a subscriber can tell whether it saw the task
    and sees it now without a query); `counts` are tasks per assignee (0: unassigned) for
    IMPORTED and PROJECT_DELETED; `members` the users a project event concerns."""

    topic: Topic
    kind: Kind
    subject: int | str  # the task, project or import job id
    at: datetime
    actor_id: int | None = None
    fields: tuple[str, ...] = ()
    before: Place = (None, None)
    after: Place = (None, None)
    counts: dict[int, int] | None = None
    members: tuple[int, ...] | None = None
    partial: bool = False  # counts/members were too long for a payload and were left out
    # Per process, per event: what subscribers share while rendering it (graph/events.py keeps
    # the event's loaders here, so a thousand subscribers cost one fetch).
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def encode(self) -> str:
        """The NOTIFY payload: compact JSON under PAYLOAD_MAX_BYTES."""
        data: dict[str, Any] = {
            "t": self.topic.value,
            "k": self.kind.value,
            "s": self.subject,
            "at": self.at.timestamp(),
            "by": self.actor_id,
            "f": list(self.fields),
            "b": list(self.before),
            "a": list(self.after),
        }
        if self.counts is not None:
            data["c"] = [[k, v] for k, v in self.counts.items()]
        if self.members is not None:
            data["m"] = list(self.members)
        text = orjson.dumps(data).decode()
        if len(text) > PAYLOAD_MAX_BYTES:
            data.pop("c", None)
            data.pop("m", None)
            data["p"] = True
            text = orjson.dumps(data).decode()
        return text

    @classmethod
    def decode(cls, payload: str) -> "Event":
        data = orjson.loads(payload)
        counts = data.get("c")
        members = data.get("m")
        return cls(
            topic=Topic(data["t"]),
            kind=Kind(data["k"]),
            subject=data["s"],
            at=datetime.fromtimestamp(data["at"], UTC),
            actor_id=data.get("by"),
            fields=tuple(data.get("f", ())),
            before=(data["b"][0], data["b"][1]),
            after=(data["a"][0], data["a"][1]),
            counts=None if counts is None else {int(k): int(v) for k, v in counts},
            members=None if members is None else tuple(members),
            partial=bool(data.get("p", False)),
        )


def now() -> datetime:
    return datetime.now(UTC)


def tally(assignees: Iterable[int | None]) -> dict[int, int]:
    """Tasks per assignee id, 0 for the unassigned ones."""
    counts: dict[int, int] = {}
    for assignee in assignees:
        key = assignee or 0
        counts[key] = counts.get(key, 0) + 1
    return counts


Deliver = Callable[[str, list[Event]], None]
_local_delivery: list[Deliver] = []


def on_local_commit(deliver: Deliver) -> None:
    """Where SQLite's committed events go: `deliver(database url, events)` (the local hubs)."""
    if deliver not in _local_delivery:
        _local_delivery.append(deliver)


def database_key(url: sa.URL) -> str:
    """The name that ties an engine to its in-process hub."""
    return url.render_as_string(hide_password=True)


def _after_commit(session: Session) -> None:
    pending: list[Event] | None = session.info.pop(_PENDING, None)
    if pending:
        key = database_key(session.get_bind().engine.url)
        for deliver in _local_delivery:
            deliver(key, pending)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


async def publish(session: AsyncSession, events: Iterable[Event]) -> None:
    """Publish `events` with the session's transaction: sent when it commits, never otherwise."""
    events = list(events)
    if not events:
        return
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        payloads = [e.encode() for e in events]
        if len(payloads) == 1:
            statement = sa.text("SELECT pg_notify(:channel, :payload)")
            await session.execute(statement, {"channel": CHANNEL, "payload": payloads[0]})
        else:
            statement = sa.text(
                "SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"
            )
            await session.execute(statement, {"channel": CHANNEL, "payloads": payloads})
        return
    sync = session.sync_session
    if not sync.info.get(_HOOKED):
        sa_event.listen(sync, "after_commit", _after_commit)
        sa_event.listen(sync, "after_rollback", _after_rollback)
        sync.info[_HOOKED] = True
    sync.info.setdefault(_PENDING, []).extend(events)
