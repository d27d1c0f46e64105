"""The peer: PostGraphile 4 (npm) over the same database, with the equivalent queries.

It is installed by package name into bench/.peer (git-ignored) the first time it is needed, and
serves the `public` schema with no authentication: it connects as the benchmark's database user
and every request reads as that user.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.common import free_port
from bench.read.queries import Query
from bench.read.seed import Seeded

VERSION = "4.14.1"
PEER_DIR = Path(__file__).resolve().parents[1] / ".peer"
BINARY = PEER_DIR / "node_modules" / ".bin" / "postgraphile"
MANIFEST = PEER_DIR / "node_modules" / "postgraphile" / "package.json"

# PostGraphile's names for our tables: Task.projectByProjectId, Task.userByAssignedTo,
# User.projectMembersByUserId, Project.projectMembersByProjectId, Project.tasksByProjectId.
# Connections are ordered as TaskQL orders its lists: by id, ties on the id.
TASK_FIELDS = "id title status projectByProjectId { name } userByAssignedTo { email }"
ALL_TASKS = "allTasks(first: 50, orderBy: PRIMARY_KEY_ASC)"
TASKS_50 = f"{{ {ALL_TASKS} {{ nodes {{ {TASK_FIELDS} }} }} }}"
TASKS_50_TOTAL = f"{{ {ALL_TASKS} {{ nodes {{ {TASK_FIELDS} }} totalCount }} }}"
# TaskQL's member sees their projects (through the membership table), the first 20 members of
# each, and per project the counts of the tasks assigned to them: one `totalCount` per status.
MEMBER_PROJECTS = """query Projects($member: Int!) { userById(id: $member) {
  projectMembersByUserId(first: 20, orderBy: PROJECT_ID_ASC) { nodes { projectByProjectId {
    id name
    projectMembersByProjectId(first: 20, orderBy: USER_ID_ASC) {
      nodes { userByUserId { id email fullName } } totalCount }
    total: tasksByProjectId(condition: {assignedTo: $member}) { totalCount }
    pending: tasksByProjectId(condition: {assignedTo: $member, status: "PENDING"}) { totalCount }
    inProgress: tasksByProjectId(condition: {assignedTo: $member, status: "IN_PROGRESS"}) {
      totalCount }
    done: tasksByProjectId(condition: {assignedTo: $member, status: "DONE"}) { totalCount }
  } } totalCount } } }"""
TASK_BY_ID = (
    "query Task($id: Int!) { taskById(id: $id) { id title status description"
    " projectByProjectId { name } userByAssignedTo { email } } }"
)
DEEP_ORDER = 'condition: {status: "IN_PROGRESS"}, orderBy: [CREATED_AT_ASC, ID_ASC]'
DEEP = (
    f"query Deep($after: Cursor!) {{ allTasks({DEEP_ORDER}, first: 50, after: $after)"
    f" {{ nodes {{ {TASK_FIELDS} }} }} }}"
)
# PostGraphile's cursors are keysets too; `offset` finds the one the page starts after.
DEEP_CURSOR = (
    f"query DeepCursor($offset: Int!) {{ allTasks({DEEP_ORDER}, first: 1, offset: $offset)"
    " { nodes { id } pageInfo { endCursor } } }"
)
MINE = (
    "query Mine($member: Int!) { allTasks(condition: {assignedTo: $member},"
    f" orderBy: PRIMARY_KEY_ASC, first: 50) {{ nodes {{ {TASK_FIELDS} }} }} }}"
)
ME = "query Me($id: Int!) { userById(id: $id) { id email } }"


def installed() -> str | None:
    """The version of PostGraphile in bench/.peer, if any."""
    if not MANIFEST.exists():
        return None
    version: str = json.loads(MANIFEST.read_text())["version"]
    return version


def install() -> Path:
    """PostGraphile in bench/.peer, installed with npm unless that version is already there."""
    if installed() == VERSION and BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is missing: the peer needs Node 20 and npm")
    print(f"installing postgraphile@{VERSION} into {PEER_DIR}", flush=True)
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(PEER_DIR), "--save-exact", "--no-audit"]
    subprocess.run([*command, "--no-fund", f"postgraphile@{VERSION}"], check=True)
    return BINARY


def post(base: str, query: Query) -> Any:
    """The query's data from the peer; exit on any error."""
    response = httpx.post(
        f"{base}/graphql",
        content=query.body(),
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SystemExit(f"peer {query.name} failed: {response.status_code} {body}")
    return body["data"]


def deep_cursor(base: str, seeded: Seeded) -> str:
    """The peer's cursor for the row the `deep` page starts after (checked by its id)."""
    found = Query("deep_cursor", DEEP_CURSOR, None, {"offset": seeded.deep_position - 1})
    page = post(base, found)["allTasks"]
    if [node["id"] for node in page["nodes"]] != [seeded.deep_task_id]:
        raise SystemExit(f"peer deep: expected task {seeded.deep_task_id}, got {page['nodes']}")
    cursor: str = page["pageInfo"]["endCursor"]
    return cursor


def queries(seeded: Seeded, cursor: str | None) -> dict[str, Query]:
    """The peer's equivalent of each TaskQL query, by the same names (no token)."""
    member = {"member": seeded.member_id}
    known = {
        "tasks50": Query("tasks50", TASKS_50, None),
        "tasks50_total": Query("tasks50_total", TASKS_50_TOTAL, None),
        "projects": Query("projects", MEMBER_PROJECTS, None, member),
        "task": Query("task", TASK_BY_ID, None, {"id": seeded.task_id}),
        "mine": Query("mine", MINE, None, member),
        "me": Query("me", ME, None, {"id": seeded.admin_id}),
    }
    if cursor is not None:
        known["deep"] = Query("deep", DEEP, None, {"after": cursor})
    return known


def command(url: str, port: int, *, workers: int, pool_size: int) -> list[str]:
    """`postgraphile` serving `public` on 127.0.0.1:port, `workers` Node processes."""
    connection = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    argv = [str(BINARY), "--connection", connection, "--schema", "public"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--max-pool-size", str(pool_size)]
    argv += ["--disable-query-log", "--disable-graphiql"]
    # Its cluster mode needs two or more workers; one is the plain server.
    return argv + (["--cluster-workers", str(workers)] if workers > 1 else [])


@contextmanager
def served(url: str, workdir: Path, *, workers: int, pool_size: int) -> Iterator[str]:
    """PostGraphile on a free port until exit; its whole process group is stopped then."""
    port = free_port()
    log_path = workdir / "peer.log"
    env = {**os.environ, "NODE_ENV": "production"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command(url, port, workers=workers, pool_size=pool_size),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the cluster's workers stop with it
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, process, log_path, workers)
            yield base
        finally:
            _stop_group(process)


def _wait_ready(base: str, process: subprocess.Popen[bytes], log_path: Path, workers: int) -> None:
    """Every worker has said it listens, and a query answers."""
    deadline = time.monotonic() + 60
    ping = Query("ping", "{ __typename }", None)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the peer exited with {process.returncode}\n{log_path.read_text()}")
        if log_path.read_text().count("listening on port") >= workers:
            try:
                post(base, ping)
                return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"the peer was not ready within 60 s\n{log_path.read_text()}")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group the peer leads; SIGKILL to what is left of it after 15 s."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            try:
                os.killpg(process.pid, 0)  # the leader is reaped: are its workers gone too?
            except ProcessLookupError:
                return
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
