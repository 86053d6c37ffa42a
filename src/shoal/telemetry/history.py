"""The dashboard's short memory: the last scrapes of every proxy, and each workload's golden
signals over time, bounded in both.

The control plane scrapes every second while a dashboard is open and hands each scrape to
`History.add`. Rates are taken over about `window_s` (the newest scrape against the newest one
at least that old), so one late scrape does not make a spike; each `add` also
appends one point per workload to a ring of `points` entries. Only the series the graph and
the charts read are kept, so a scrape's memory is a few of its families, not all of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shoal.telemetry import golden, graph
from shoal.telemetry.promtext import Sample

KEPT = frozenset({golden.REQUESTS, golden.DURATION_BUCKET})


@dataclass(frozen=True)
class Point:
    """One workload's signals at one time (inbound, as its own sidecars served them)."""

    t: float  # seconds (the caller's clock: wall time for the page)
    rps: float
    success: float | None  # None: idle
    p50: float | None
    p99: float | None

    def to_json(self) -> dict[str, object]:
        return {"t": self.t, "rps": self.rps, "success": self.success, "p50": self.p50,
                "p99": self.p99}  # fmt: skip


@dataclass(frozen=True)
class _Scrape:
    t: float
    samples: tuple[Sample, ...]


class History:
    """Bounded: at most `window_s / interval + 1` scrapes, `points` points per workload and
    `max_workloads` workloads (the least recently seen go first)."""

    def __init__(self, window_s: float = 6.0, points: int = 300, max_workloads: int = 500):
        self.window_s = window_s
        self.points = points
        self.max_workloads = max_workloads
        self._scrapes: deque[_Scrape] = deque()
        self._series: dict[str, deque[Point]] = {}

    def add(self, t: float, samples: Iterable[Sample]) -> None:
        kept = tuple(s for s in samples if s.name in KEPT)
        if self._scrapes and self._scrapes[-1].t < t - 3 * self.window_s:
            # sampling paused (nobody watched): a rate over the gap would be no "now"
            self._scrapes.clear()
        self._scrapes.append(_Scrape(t, kept))
        # drop the oldest while the next one still covers the window
        while len(self._scrapes) > 2 and self._scrapes[1].t <= t - self.window_s:
            self._scrapes.popleft()
        first = self._scrapes[0]
        if first is self._scrapes[-1]:
            return
        for stat in golden.stats(first.samples, kept, t - first.t, {}):
            key = f"{stat.namespace}/{stat.name}"
            ring = self._series.pop(key, None) or deque(maxlen=self.points)
            ring.append(Point(t, stat.rps, stat.success, stat.p50, stat.p99))
            self._series[key] = ring  # re-inserted: the dict's order is least recent first
        while len(self._series) > self.max_workloads:
            del self._series[next(iter(self._series))]

    @property
    def latest(self) -> float | None:
        return self._scrapes[-1].t if self._scrapes else None

    def graph(self, proxies: Iterable[graph.Proxy] = ()) -> graph.Graph:
        """The service graph over the window (no rates after a single scrape)."""
        if not self._scrapes:
            return graph.build(None, (), None, proxies)
        first, last = self._scrapes[0], self._scrapes[-1]
        if first is last:
            return graph.build(None, last.samples, None, proxies)
        return graph.build(first.samples, last.samples, last.t - first.t, proxies)

    def series(self, workload_id: str) -> Sequence[Point]:
        """`namespace/workload`'s points, oldest first (empty if never seen busy)."""
        return tuple(self._series.get(workload_id, ()))
