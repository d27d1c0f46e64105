"""`taskql serve --workers N`: N uvicorn processes, each listening on its own socket bound to the
same port (SO_REUSEPORT), so the kernel spreads new connections over them.

With one shared socket (uvicorn's own `--workers`), the process that wakes first accepts every
connection waiting at that moment: measured here, 32 keep-alive connections opened at once
landed 32/0, 30/2 and 13/19 on two workers, and the busy one set the pace and the slowest
requests. A worker that dies after it has run a while is started again; one that cannot start
stops them all.
"""

import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

APP = "taskql.app:create_app"
GRACE_SECONDS = 10.0
MIN_UPTIME_SECONDS = 5.0
BACKLOG = 2048


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


def _worker(host: str, port: int, log_level: str, access_log: bool) -> None:
    sock = _listening_socket(host, port)
    config = uvicorn.Config(
        APP, factory=True, log_level=log_level, access_log=access_log, host=host, port=port
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve(host: str, port: int, workers: int, log_level: str, access_log: bool) -> int:
    """Run `workers` processes until SIGINT or SIGTERM; the exit code of a failed start."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port, log_level, access_log))
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
