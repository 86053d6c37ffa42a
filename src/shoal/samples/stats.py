"""What the traffic generator measures: per-request outcomes and their one-line summary.

Pure functions over plain values, so the walk of a response tree, the percentiles and the
formatting are tested without a network.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


def versions_in(tree: Any) -> list[str]:
    """`service:version` of every node of a sample-service response tree, depth first.

    A node is any JSON object with string `service` and `version`; children are the entries
    of its `upstreams` list. Folded-in upstream failures (`{"url", "error"}`) name no version
    and are skipped, so a version that did not answer is not counted as seen.
    """
    found: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        service, version = node.get("service"), node.get("version")
        if isinstance(service, str) and isinstance(version, str):
            found.append(f"{service}:{version}")
        children = node.get("upstreams")
        if isinstance(children, list):
            # Reversed so the pop order is the list order (depth first, left to right).
            stack.extend(reversed(children))
    return found


def failed_calls_in(tree: Any) -> int:
    """How many upstream calls in a response tree failed (entries folded in as `{"url", "error"}`).

    A frontend answers 200 with a partial result when an upstream fails; this is what tells
    such a degraded answer from a whole one.
    """
    failed = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "url" in node and "error" in node:
            failed += 1
        children = node.get("upstreams")
        if isinstance(children, list):
            stack.extend(children)
    return failed


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One request: its status (None if no HTTP answer), latency and the versions that answered."""

    status: int | None
    latency: float
    versions: tuple[str, ...] = ()
    error: str | None = None
    failed_calls: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400

    @property
    def failure(self) -> str:
        """How it failed, for the error tally: the status code or the exception name."""
        return str(self.status) if self.status is not None else (self.error or "error")


@dataclasses.dataclass(frozen=True)
class Summary:
    """Aggregates of a batch of outcomes."""

    requests: int
    ok: int
    degraded: int  # answered ok, but with some upstream call failed inside
    p50: float
    p99: float
    versions: dict[str, int]
    errors: dict[str, int]

    @property
    def success_pct(self) -> float:
        return 100.0 * self.ok / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "success_pct": round(self.success_pct, 2),
            "degraded": self.degraded,
            "p50_ms": round(self.p50 * 1000, 3),
            "p99_ms": round(self.p99 * 1000, 3),
            "versions": self.versions,
            "errors": self.errors,
        }


def summarize(outcomes: Iterable[Outcome]) -> Summary:
    batch = list(outcomes)
    latencies = [o.latency for o in batch]
    versions: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for outcome in batch:
        versions.update(outcome.versions)
        if not outcome.ok:
            errors[outcome.failure] += 1
    return Summary(
        requests=len(batch),
        ok=sum(1 for o in batch if o.ok),
        degraded=sum(1 for o in batch if o.ok and o.failed_calls),
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        versions=dict(sorted(versions.items())),
        errors=dict(sorted(errors.items())),
    )


def format_summary(summary: Summary, label: str) -> str:
    """One line: `[5s] 25 req 96.0% ok p50 12.3ms p99 48.1ms | errors 503=1 | reviews:v1=20`."""
    parts = [
        f"[{label}] {summary.requests} req",
        f"{summary.success_pct:.1f}% ok"
        + (f" ({summary.degraded} degraded)" if summary.degraded else ""),
        f"p50 {summary.p50 * 1000:.1f}ms",
        f"p99 {summary.p99 * 1000:.1f}ms",
    ]
    line = " ".join(parts)
    if summary.errors:
        line += " | errors " + " ".join(f"{k}={v}" for k, v in summary.errors.items())
    if summary.versions:
        line += " | " + " ".join(f"{k}={v}" for k, v in summary.versions.items())
    return line
