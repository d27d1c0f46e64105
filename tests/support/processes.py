"""Real `taskql` processes: their environment, starting and running them, health waits, stops."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.accounts import TEST_BCRYPT_ROUNDS, TEST_SECRET

TASKQL = str(Path(sys.executable).with_name("taskql"))
# Settings a spawned process must not inherit from the developer's shell.
DROPPED_PREFIXES = ("TASKQL_", "JWT_", "IMPORT_")


def process_env(database_url: str, upload_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment for a spawned `taskql` process on `database_url`, then `overrides`.

    The secret is the `settings` fixture's, so tokens minted by `token_for` work in the process.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=TEST_SECRET,
        UPLOAD_DIR=str(upload_dir),
        BCRYPT_ROUNDS=str(TEST_BCRYPT_ROUNDS),
        LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


def taskql_command(*args: str) -> list[str]:
    """The command line of `taskql ARGS`."""
    return [TASKQL, *args]


def start_taskql(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `taskql ARGS` in the background, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(taskql_command(*args), env=env, stdout=out, stderr=out)


def run_taskql(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `taskql ARGS` to its end (no terminal, a minute at most), capturing its output."""
    return subprocess.run(
        taskql_command(*args),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], *, log: Path | None = None, timeout: float = 40
) -> None:
    """Block until `url`/healthz answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text()[-3000:] if log is not None else ""
            raise AssertionError(f"server exited early with {process.returncode}\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server at {url} did not become healthy within {timeout} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def taskql_server(env: dict[str, str], log: Path, *args: str) -> Iterator[str]:
    """`taskql serve ARGS` on a free port, healthy; its URL while the block runs, then stopped."""
    port = free_port()
    process = start_taskql(["serve", "--port", str(port), "--no-access-log", *args], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log=log)
        yield url
    finally:
        stop_process(process)
