"""Pool metrics and SQL spans for an engine, through SQLAlchemy's events.

`observe_engine` is called once per server engine. Pool figures (size, open and checked-out
connections, sampled every second; checkouts that waited, timeouts) feed core.metrics; each
statement inside a recorded trace becomes a `db.query` span, a child of the current span.
"""

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, QueuePool

from core import metrics, tracing

OBSERVED = "_taskql_observed"
SPAN_KEY = "taskql_span"
MAX_STATEMENT_CHARS = 2000


def observe_engine(engine: AsyncEngine, *, pool_metrics: bool, sql_spans: bool) -> None:
    """Attach the listeners that are asked for (once per engine)."""
    sync = engine.sync_engine
    observed: set[str] = sync.__dict__.setdefault(OBSERVED, set())
    if pool_metrics and "pool" not in observed:
        observed.add("pool")
        _observe_pool(sync.pool)
    if sql_spans and "sql" not in observed:
        observed.add("sql")
        event.listen(sync, "before_cursor_execute", _before_execute)
        event.listen(sync, "after_cursor_execute", _after_execute)
        event.listen(sync, "handle_error", _on_error)


_pools: "weakref.WeakSet[QueuePool]" = weakref.WeakSet()
_sampler: threading.Thread | None = None
SAMPLE_SECONDS = 1.0


def _observe_pool(pool: Pool) -> None:
    global _sampler
    if not isinstance(pool, QueuePool):  # SQLite in memory: a single static connection
        return
    _count_waits(pool)
    _pools.add(pool)
    sample_pools()
    if _sampler is None:
        _sampler = threading.Thread(target=_sample_forever, name="taskql-pool-gauges", daemon=True)
        _sampler.start()


def sample_pools() -> None:
    """Set the pool gauges from this process's pools (their own counts, read without a lock)."""
    size = open_ = checked_out = 0
    for pool in list(_pools):
        size += pool.size() + max(pool._max_overflow, 0)
        out = pool.checkedout()
        checked_out += out
        open_ += out + pool.checkedin()
    metrics.pool_size.set(size)
    metrics.pool_open.set(open_)
    metrics.pool_checked_out.set(checked_out)


def _sample_forever() -> None:
    # A thread rather than per-checkout counting: two gauge writes per request cost the
    # compiled reads more than one sample a second costs anyone.
    while True:
        time.sleep(SAMPLE_SECONDS)
        sample_pools()


def _count_waits(pool: QueuePool) -> None:
    # The pool has no event for a checkout that must wait: wrap this pool's own `_do_get`.
    original: Callable[[], Any] = pool._do_get

    def do_get() -> Any:
        if pool.checkedin() == 0 and pool.overflow() >= pool._max_overflow:
            metrics.pool_waits.inc()
        try:
            return original()
        except sa_exc.TimeoutError:
            metrics.pool_timeouts.inc()
            raise

    pool._do_get = do_get  # type: ignore[method-assign]


def statement_span(system: str, statement: str, *, many: bool = False) -> Any:
    """A started `db.query` span for a statement inside a recorded trace (the caller ends
    it), else None."""
    if tracing.TRACER is None:
        return None
    return tracing.child_span(
        "db.query",
        {
            "db.system": system,
            "db.statement": statement[:MAX_STATEMENT_CHARS],
            "db.executemany": many,
        },
    )


def _before_execute(
    conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any, many: bool
) -> None:
    span = statement_span(conn.dialect.name, statement, many=many)
    if span is not None and context is not None:
        context._taskql_span = span
        context._taskql_started = time.perf_counter()


def _after_execute(
    _conn: Connection, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
) -> None:
    span = getattr(context, "_taskql_span", None)
    if span is not None:
        span.end()
        context._taskql_span = None


def _on_error(exception_context: Any) -> None:
    span = getattr(exception_context.execution_context, "_taskql_span", None)
    if span is not None:
        span.record_exception(exception_context.original_exception)
        span.set_attribute("error", True)
        span.end()
        exception_context.execution_context._taskql_span = None
