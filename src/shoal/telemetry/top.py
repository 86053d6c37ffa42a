"""`shoal top`'s table: tapped requests grouped by source, destination, method and path.

Pure, like `linkerd viz top`: per group the number of requests seen, the share that
succeeded (answered, not 5xx), and the best, worst and last latency. Rows are ordered by
count (busiest first), then by name so equal counts keep their place between refreshes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.telemetry.tap import TapEvent

Key = tuple[str, str, str, str]  # source, destination, method, path


@dataclass(frozen=True)
class Row:
    source: str
    destination: str
    method: str
    path: str
    count: int
    success: float  # fraction
    best_ms: float | None
    worst_ms: float | None
    last_ms: float | None


class Top:
    """Accumulates events; `rows()` is the table so far."""

    def __init__(self) -> None:
        self._count: dict[Key, int] = {}
        self._ok: dict[Key, int] = {}
        self._best: dict[Key, float] = {}
        self._worst: dict[Key, float] = {}
        self._last: dict[Key, float | None] = {}

    def add(self, events: Iterable[TapEvent]) -> None:
        for e in events:
            key = (e.source, e.destination, e.method, e.path)
            self._count[key] = self._count.get(key, 0) + 1
            self._ok[key] = self._ok.get(key, 0) + (1 if e.success else 0)
            self._last[key] = e.latency_ms
            if e.latency_ms is not None:
                self._best[key] = min(self._best.get(key, e.latency_ms), e.latency_ms)
                self._worst[key] = max(self._worst.get(key, e.latency_ms), e.latency_ms)

    @property
    def total(self) -> int:
        return sum(self._count.values())

    def rows(self, limit: int | None = None) -> list[Row]:
        keys = sorted(self._count, key=lambda k: (-self._count[k], k))
        return [
            Row(
                *key,
                count=self._count[key],
                success=self._ok[key] / self._count[key],
                best_ms=self._best.get(key),
                worst_ms=self._worst.get(key),
                last_ms=self._last.get(key),
            )
            for key in keys[:limit]
        ]
