"""Drive a bounded load with wrk (Debian package `wrk`) and read its figures."""

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# POSTs one fixed JSON body; counts responses that carry GraphQL errors (they are HTTP 200).
LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{authorization}

local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) graphql_errors = 0 end
function response(status, headers, body)
  if string.find(body, '"errors"', 1, true) then graphql_errors = graphql_errors + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("graphql_errors") end
  io.write(string.format("graphql_errors=%d\\n", total))
end
"""

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int  # non-2xx responses, socket errors and responses with GraphQL errors


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * UNITS[match[2]]


def parse_output(output: str) -> LoadResult:
    """The figures of `wrk --latency` output (with the script's error counter)."""

    def find(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return match[1]

    failed = int(find(r"graphql_errors=(\d+)"))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed += int(non_2xx[1]) if non_2xx else 0
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        failed += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return LoadResult(
        requests_per_second=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_millis(find(r"^\s+50%\s+(\S+)\s*$")),
        p99_ms=_millis(find(r"^\s+99%\s+(\S+)\s*$")),
        requests=int(find(r"(\d+) requests in")),
        failed=failed,
    )


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    return path


def run(
    url: str, body: bytes, token: str | None, *, connections: int, seconds: float
) -> LoadResult:
    """One wrk run: one thread (wrk shares the server's cores), `connections` keep-alives.

    `token` goes in `Authorization: Bearer`; None sends no such header.
    """
    authorization = "" if token is None else f'wrk.headers["Authorization"] = "Bearer {token}"'
    script = LUA.format(body=body.decode(), authorization=authorization)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        completed = subprocess.run(
            [
                require_wrk(),
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        Path(handle.name).unlink()
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse_output(completed.stdout)
