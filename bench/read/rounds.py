"""Drive the served systems with wrk, query by query, round after round, alternating them."""

import os
from dataclasses import dataclass
from statistics import median

from bench.read import wrk
from bench.read.queries import Query

WARMUP_SECONDS = 2.0


@dataclass(frozen=True)
class Target:
    """A served system: its GraphQL endpoint, its version of each query, the callers' tokens."""

    name: str
    url: str
    queries: dict[str, Query]
    tokens: dict[str, str]

    def run(self, name: str, *, connections: int, seconds: float) -> wrk.LoadResult:
        query = self.queries[name]
        token = None if query.caller is None else self.tokens[query.caller]
        return wrk.run(self.url, query.body(), token, connections=connections, seconds=seconds)


@dataclass(frozen=True)
class Series:
    """One query on one system, measured once per round."""

    results: tuple[wrk.LoadResult, ...]

    @property
    def rps(self) -> float:
        return median(r.requests_per_second for r in self.results)

    @property
    def rps_range(self) -> tuple[float, float]:
        values = [r.requests_per_second for r in self.results]
        return min(values), max(values)

    @property
    def p50(self) -> float:
        return median(r.p50_ms for r in self.results)

    @property
    def p99(self) -> float:
        return median(r.p99_ms for r in self.results)


def ratios(ours: Series, theirs: Series) -> list[float]:
    """Req/s of ours over theirs, round by round."""
    return [
        a.requests_per_second / b.requests_per_second
        for a, b in zip(ours.results, theirs.results, strict=True)
    ]


def measure(
    targets: list[Target], names: list[str], *, rounds: int, connections: int, seconds: float
) -> dict[tuple[str, str], Series]:
    """Per (system, query): a warm-up, then a measured run, per round.

    Within a round each query runs on every system back to back; the order of the systems
    flips from one round to the next, so neither always runs right after the other.
    """
    found: dict[tuple[str, str], list[wrk.LoadResult]] = {}
    for round_number in range(1, rounds + 1):
        order = targets if round_number % 2 else targets[::-1]
        for name in names:
            for target in order:
                target.run(name, connections=connections, seconds=WARMUP_SECONDS)
                result = target.run(name, connections=connections, seconds=seconds)
                if result.failed:
                    raise SystemExit(f"{target.name} {name}: {result.failed} failed responses")
                print(
                    f"  round {round_number}  {target.name:<12} {name:<13} "
                    f"{result.requests_per_second:8.1f} req/s  "
                    f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
                    f"(load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                found.setdefault((target.name, name), []).append(result)
    return {key: Series(tuple(results)) for key, results in found.items()}
