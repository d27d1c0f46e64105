"""What every benchmark needs around the server it starts: a port, a readiness wait, a stop."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TASKQL = str(Path(sys.executable).with_name("taskql"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    base: str, process: subprocess.Popen[bytes], *, log: Path | None = None, timeout: float = 60
) -> None:
    """Block until `base`/readyz answers 200 (database up and migrated); exit if the server dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text()[-3000:] if log is not None else ""
            raise SystemExit(f"the server exited early with {process.returncode}\n{output}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {base} was not ready within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
