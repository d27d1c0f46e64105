"""`taskql serve --workers N`: N uvicorn processes, each listening on its own socket bound to the
same port (SO_REUSEPORT), so the kernel spreads new connections over them.

With one shared socket (uvicorn's own `--workers`), the process that wakes first accepts every
connection waiting at that moment: measured here, 32 keep-alive connections opened at once
landed 32/0, 30/2 and 13/19 on two workers, and the busy one set the pace and the slowest
requests. A worker that dies after it has run a while is started again; one that cannot start
stops them all.
"""

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Literal

import uvicorn

from core import logs

APP = "taskql.app:create_app"
GRACE_SECONDS = 10.0
MIN_UPTIME_SECONDS = 5.0
BACKLOG = 2048
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when it is imported


def supported() -> bool:
    """Whether this platform spreads connections over sockets that share a port."""
    return hasattr(socket, "SO_REUSEPORT")


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


@dataclass(frozen=True, slots=True)
class Logging:
    """How workers log: uvicorn's level, LOG_FORMAT, and whether access lines are written."""

    level: str
    format: Literal["text", "json"]
    access_log: bool


def _worker(host: str, port: int, logging_: Logging) -> None:
    logs.configure(logging_.level, logging_.format)
    if not logging_.access_log:
        logging.getLogger("taskql.access").setLevel(logging.WARNING)
    sock = _listening_socket(host, port)
    config = uvicorn.Config(
        APP,
        factory=True,
        log_level=logging_.level,
        access_log=logging_.access_log,
        host=host,
        port=port,
        log_config=None,
    )
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def metrics_directory(on: bool) -> Iterator[None]:
    """With METRICS on, a PROMETHEUS_MULTIPROC_DIR the workers write to and every scrape reads:
    a fresh temporary one (removed at the end), or the operator's own, emptied first."""
    if not on:
        yield
        return
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="taskql-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # figures of an earlier run would be added to this one's
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield
    finally:
        if not given:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


def serve(host: str, port: int, workers: int, logging_: Logging, *, metrics: bool = False) -> int:
    """Run `workers` processes until SIGINT or SIGTERM; the exit code of a failed start."""
    with metrics_directory(metrics):
        return _supervise(host, port, workers, logging_)


def _supervise(host: str, port: int, workers: int, logging_: Logging) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port, logging_))
        process.start()
        return process

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    running = {start(): time.monotonic() for _ in range(workers)}
    code = 0
    while not stopping:
        time.sleep(0.2)
        for process, started in list(running.items()):
            if process.is_alive():
                continue
            del running[process]
            _forget(process)
            if time.monotonic() - started < MIN_UPTIME_SECONDS:
                print(f"taskql: a worker failed to start ({process.exitcode})", file=sys.stderr)
                code, stopping = process.exitcode or 1, True
                break
            running[start()] = time.monotonic()
    for process in running:
        process.terminate()  # uvicorn finishes the requests in flight on SIGTERM
    for process in running:
        process.join(GRACE_SECONDS)
        if process.is_alive():
            process.kill()
    return code


def _forget(process: BaseProcess) -> None:
    """Drop a dead worker's live gauges (WebSockets, pool) from the multiprocess figures."""
    if process.pid is not None and os.environ.get(MULTIPROC_ENV):
        from core.metrics import worker_gone

        worker_gone(process.pid)
