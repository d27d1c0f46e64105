"""The benchmark's closing tables."""

import os
import subprocess
from dataclasses import dataclass
from statistics import median

from bench.read.probe import Answer
from bench.read.rounds import Series, ratios
from bench.read.seed import Shape

TASKQL = "TaskQL"
PEER = "PostGraphile"


@dataclass(frozen=True)
class Measured:
    """One seeded database: TaskQL's in-process answers and every (system, query) series."""

    backend: str
    shape: Shape
    answers: dict[str, Answer]
    series: dict[tuple[str, str], Series]


@dataclass(frozen=True)
class Setup:
    connections: int
    seconds: float
    rounds: int
    workers: int
    peer_workers: int
    peer_pool: int


def revision() -> str:
    """The commit measured, and whether tracked files differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown revision"
    return f"{head} with uncommitted changes" if changed else head


def header(setup: Setup) -> None:
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    runs = "1 run" if setup.rounds == 1 else f"{setup.rounds} rounds, medians"
    print()
    print(
        f"TaskQL at {revision()}; {setup.connections} connections, {setup.seconds:g} s per run "
        f"after a 2 s warm-up ({runs}); `taskql serve --workers {setup.workers}`; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )


def _range(series: Series) -> str:
    low, high = series.rps_range
    return f"{low:.0f}-{high:.0f}"


def plain_table(measured: list[Measured], setup: Setup) -> None:
    """TaskQL alone: per database and query."""
    header(setup)
    print(
        f"{'backend':<11} {'tasks':>9} {'query':<13} {'req/s':>8} {'min-max':>11} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'SQL/req':>8}"
    )
    for m in measured:
        for (system, name), s in m.series.items():
            if system != TASKQL:
                continue
            print(
                f"{m.backend:<11} {m.shape.tasks:>9,} {name:<13} {s.rps:8.1f} {_range(s):>11} "
                f"{s.p50:8.1f} {s.p99:8.1f} {m.answers[name].statements:8d}"
            )


def peer_table(m: Measured, names: list[str], setup: Setup) -> None:
    """TaskQL against the peer, query by query, and the ratio of their req/s."""
    header(setup)
    print(
        f"TaskQL sends a bearer token (checked, then the caller's scope applied in SQL); "
        f"{PEER} {setup.peer_workers} workers, pool {setup.peer_pool} each, no authentication. "
        f"{m.shape.tasks:,} tasks, PostgreSQL."
    )
    side = f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{'':<13} {'TaskQL':-^34}   {PEER:-^26}")
    print(f"{'query':<13} {side} {'SQL/req':>8}   {side}   {'TaskQL/peer req/s':>22}")
    for name in names:
        ours, theirs = m.series[TASKQL, name], m.series[PEER, name]
        r = ratios(ours, theirs)
        ratio = f"{median(r):.2f} ({min(r):.2f}-{max(r):.2f})"
        print(
            f"{name:<13} {ours.rps:8.1f} {ours.p50:8.1f} {ours.p99:8.1f} "
            f"{m.answers[name].statements:8d}   "
            f"{theirs.rps:8.1f} {theirs.p50:8.1f} {theirs.p99:8.1f}   {ratio:>22}"
        )


def sizes_table(measured: list[Measured], names: list[str], setup: Setup) -> None:
    """Per size: p50 (and req/s); then how p50 grew from the smallest size to the largest."""
    header(setup)
    systems = [TASKQL] + ([PEER] if any(s == PEER for s, _ in measured[0].series) else [])
    columns = "".join(f"  {system + ' p50 ms':>17} {'req/s':>8}" for system in systems)
    print(f"{'backend':<11} {'tasks':>10} {'query':<13}{columns}")
    for m in measured:
        for name in names:
            cells = "".join(
                f"  {m.series[system, name].p50:17.1f} {m.series[system, name].rps:8.1f}"
                for system in systems
            )
            print(f"{m.backend:<11} {m.shape.tasks:>10,} {name:<13}{cells}")
    for backend in dict.fromkeys(m.backend for m in measured):
        ordered = sorted((m for m in measured if m.backend == backend), key=lambda m: m.shape.tasks)
        small, large = ordered[0], ordered[-1]
        growth = ", ".join(
            f"{system} {name} x{_growth(small, large, system, name):.2f}"
            for system in systems
            for name in names
        )
        print(
            f"{backend}: p50 at {large.shape.tasks:,} tasks over p50 at {small.shape.tasks:,}: "
            f"{growth}"
        )


def _growth(small: Measured, large: Measured, system: str, name: str) -> float:
    return large.series[system, name].p50 / small.series[system, name].p50
