"""Prometheus metrics: every instrument TaskQL records, and the scrape's text.

The instruments exist from import on, but the hooks that feed them check `ON` first, so with
`METRICS=off` (the default) they cost one attribute read. Several worker processes write to
prometheus-client's multiprocess files when `PROMETHEUS_MULTIPROC_DIR` is set (the supervisor of
`taskql serve --workers N` sets it before starting them), and a scrape of any one worker reads
them all. Labels are bounded: operation names are capped (see `operation_label`), routes are
the app's own templates.
"""

import os
import re
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ON = False  # set by `enable`; the hooks record nothing while it is False

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "_other"  # unnamed, malformed and over-the-cap operation names, unknown routes
MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
_seen_names: set[str] = set()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

graphql_operations = Counter(
    "taskql_graphql_operations",
    "GraphQL operations by name, type, outcome (ok, error, request_error) and first error code.",
    ["operation", "type", "outcome", "code"],
)
graphql_seconds = Histogram(
    "taskql_graphql_operation_seconds",
    "GraphQL operation latency, from the request to the answer, by operation name.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
read_path = Counter(
    "taskql_read_path",
    "HTTP queries by the path that answered them: compiled, or executor (fallback).",
    ["path"],
)
http_requests = Counter(
    "taskql_http_requests",
    "HTTP requests by route, method and status.",
    ["route", "method", "status"],
)
websocket_connections = Gauge(
    "taskql_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
subscriptions_active = Gauge(
    "taskql_subscriptions_active", "Subscriptions being served.", multiprocess_mode="livesum"
)
import_jobs = Gauge(
    "taskql_import_jobs",
    "Import jobs in the database by status (read at scrape time).",
    ["status"],
    multiprocess_mode="mostrecent",
)
import_queue_depth = Gauge(
    "taskql_import_queue_depth",
    "Import jobs waiting to be claimed (read at scrape time).",
    multiprocess_mode="mostrecent",
)
import_oldest_queued_seconds = Gauge(
    "taskql_import_oldest_queued_seconds",
    "Age of the oldest queued import job, 0 when none waits (read at scrape time).",
    multiprocess_mode="mostrecent",
)
import_jobs_finished = Counter(
    "taskql_import_jobs_finished", "Import jobs finished by this server's runners.", ["status"]
)
import_rows = Counter(
    "taskql_import_rows", "CSV rows committed by the runners: imported or failed.", ["outcome"]
)
import_heartbeats = Counter("taskql_import_heartbeats", "Heartbeats written by running jobs.")
# The pool gauges are sampled (every second, and at each scrape), not counted per checkout.
pool_size = Gauge(
    "taskql_db_pool_size",
    "Connections the database pools may hold (pool_size + max_overflow).",
    multiprocess_mode="livesum",
)
pool_open = Gauge(
    "taskql_db_pool_connections", "Database connections open.", multiprocess_mode="livesum"
)
pool_checked_out = Gauge(
    "taskql_db_pool_checked_out",
    "Database connections checked out of the pools.",
    multiprocess_mode="livesum",
)
pool_waits = Counter(
    "taskql_db_pool_checkout_waits", "Checkouts that found no free connection and waited."
)
pool_timeouts = Counter(
    "taskql_db_pool_checkout_timeouts",
    "Checkouts that gave up after DATABASE_POOL_TIMEOUT_SECONDS.",
)
read_batch_size = Histogram(
    "taskql_db_read_batch_size",
    "Compiled reads sent to PostgreSQL in one round trip (db/direct.py).",
    buckets=(1, 2, 4, 8, 16),
)
login_attempts = Counter(
    "taskql_login_attempts", "Login attempts by outcome: success, failure, throttled.", ["outcome"]
)


def enable(on: bool = True) -> None:
    """Turn recording on (or off) in this process."""
    global ON
    ON = on


def operation_label(name: str | None) -> str:
    """`name` as a label value: well-formed names, up to MAX_OPERATION_NAMES distinct ones per
    process; unnamed, malformed and later names share OTHER."""
    if not name:
        return OTHER
    if name in _seen_names:
        return name
    if len(_seen_names) >= MAX_OPERATION_NAMES or not _NAME.match(name):
        return OTHER
    _seen_names.add(name)
    return name


# Label children, looked up once: `labels()` costs a lock and a tuple per call, which the
# compiled read path's budget notices. Bounded like the label values themselves.
MAX_CACHED_CHILDREN = 4096
_operation_children: dict[tuple[str | None, str, str, str], tuple[Any, Any]] = {}
_http_children: dict[tuple[str, str, str], Any] = {}
compiled_reads = read_path.labels("compiled")
executor_reads = read_path.labels("executor")


def record_operation(name: str | None, kind: str, outcome: str, code: str, seconds: float) -> None:
    """One GraphQL operation's counters and latency."""
    key = (name, kind, outcome, code)
    children = _operation_children.get(key)
    if children is None:
        label = operation_label(name)
        children = (
            graphql_operations.labels(label, kind, outcome, code),
            graphql_seconds.labels(label),
        )
        if len(_operation_children) < MAX_CACHED_CHILDREN:
            _operation_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def record_http(route: str, method: str, status: str) -> None:
    """One HTTP request."""
    key = (route, method, status)
    child = _http_children.get(key)
    if child is None:
        child = http_requests.labels(route, method, status)
        if len(_http_children) < MAX_CACHED_CHILDREN:
            _http_children[key] = child
    child.inc()


def scrape() -> bytes:
    """The Prometheus text of every worker (multiprocess files) or of this process."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_gone(pid: int) -> None:
    """Forget the live gauges of a worker process that ended (the supervisor calls this)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
