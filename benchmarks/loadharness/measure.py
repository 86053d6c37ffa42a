"""What the scenarios measure: the matrix cell, options, and per-change figures.

`collect` turns the fleet's recorded timestamps after a change at ``t0`` into a `Change`: per
affected proxy its latency, who received anything, responses by type, bytes, and the
serialized resources and recipients the floor replays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadharness import procstat
from loadharness.client import Fleet, total_bytes
from loadharness.protocol import Identity
from meshgen import SERVICE_PORT, namespaces

# how long after the cold start resident memory is read again: the burst's buffers freed
SETTLE_S = 2.0


@dataclass(frozen=True)
class Cell:
    """One point of the matrix."""

    services: int
    proxies: int
    delta: bool = False
    scoped: bool = False
    endpoints: int = 10
    namespaces: int = 10
    vs_fraction: float = 0.5
    one_file: bool = False  # every ServiceEntry in one registry.yaml (meshgen's one-file layout)

    @property
    def label(self) -> str:
        mode = "delta" if self.delta else "sotw"
        layout = " one-file" if self.one_file else ""
        return (
            f"S={self.services} N={self.proxies} {mode}{' scoped' if self.scoped else ''}{layout}"
        )


@dataclass
class Options:
    changes: int = 5  # endpoint changes and VirtualService changes, each
    churn_s: float = 10.0
    churn_rate: float = 10.0
    debounce_ms: int | None = None  # None: the control plane's default (100 ms)
    per_channel: int = 64
    floor: bool = True
    limit_s: float = 60.0  # give up waiting for convergence after this long
    vs_changes: int | None = None  # None: as many as `changes`


@dataclass
class Change:
    """One measured change (or push, on the floor)."""

    latencies: list[float]  # seconds, per affected proxy; NaN: did not converge
    affected: int
    receivers: int  # proxies that received anything at all
    outside: int  # receivers outside the affected set
    types: dict[str, int]  # responses by type, over the fleet
    nbytes: int
    cpu_s: float = math.nan
    first_rx: float = math.nan  # s from the change to the first response of its type
    nodes: frozenset[str] = frozenset()  # receivers of the measured type: the floor's fan-out
    resources: list[bytes] = field(default_factory=list)  # what proxy 0 got: the floor's bytes

    @property
    def converged(self) -> int:
        return sum(1 for x in self.latencies if not math.isnan(x))

    @property
    def all_s(self) -> float:
        """Time until every affected proxy ACKed (NaN if some never did)."""
        return max(self.latencies, default=math.nan) if self.latencies else math.nan


@dataclass
class Side:
    """Everything measured against one server (shoal or the floor) in a cell."""

    cold_s: float = math.nan
    cold_p50_s: float = math.nan
    eds: list[Change] = field(default_factory=list)
    vs: list[Change] = field(default_factory=list)
    churn: list[Change] = field(default_factory=list)
    rss_mb: float = math.nan
    rss_settled_mb: float = math.nan  # 2 s later, nothing sent meanwhile
    hwm_mb: float = math.nan
    rss_series: list[tuple[float, float]] = field(default_factory=list)
    cpu_cold_s: float = math.nan
    config_errors: list[str] = field(default_factory=list)
    startup: dict[str, float] = field(default_factory=dict)  # the backend's (backends.py)
    stream_errors: list[str] = field(default_factory=list)


@dataclass
class CellResult:
    cell: Cell
    shoal: Side
    floor: Side | None


def identities(cell: Cell) -> list[Identity]:
    names = namespaces(cell.namespaces)
    return [
        Identity(f"sim-{i}", names[i % len(names)], 20000 + i, 40000 + i % 20000)
        for i in range(cell.proxies)
    ]


def cluster_of(host: str) -> str:
    return f"outbound|{SERVICE_PORT}||{host}"


async def cold_start(fleet: Fleet, side: Side, limit_s: float) -> None:
    t0 = await fleet.start()
    await fleet.wait(fleet.all_acked, limit_s)
    await fleet.quiet(0.5, limit_s)
    synced = sorted(t - t0 for t in fleet.synced_at())
    side.cold_s = synced[-1] if fleet.all_acked() else math.nan
    side.cold_p50_s = procstat.percentile(synced, 50)


def collect(
    fleet: Fleet, t0: float, affected: list[int], latencies: list[float], type_url: str
) -> Change:
    # the floor replays what the first affected proxy got (one per namespace keeps bytes)
    witness = next((i for i in affected if fleet.proxies[i].capture), 0)
    got = {i for i, p in enumerate(fleet.proxies) if p.state.received_since(t0)}
    types: dict[str, int] = {}
    for p in fleet.proxies:
        for kind, n in p.state.received_since(t0).items():
            types[kind] = types.get(kind, 0) + n
    nodes = frozenset(
        p.state.identity.node_id
        for p in fleet.proxies
        if p.state.types[type_url].first_ack_after(t0) is not None
    )
    received = [
        ev.received - t0
        for i in affected
        for ev in fleet.proxies[i].state.types[type_url].events
        if ev.received >= t0
    ]
    return Change(
        first_rx=min(received, default=math.nan),
        latencies=latencies,
        affected=len(affected),
        receivers=len(got),
        outside=len(got - set(affected)),
        types=types,
        nbytes=total_bytes(fleet, t0),
        nodes=nodes,
        resources=fleet.last_response(type_url, witness),
    )


def lat(value: float | None, t0: float) -> float:
    return math.nan if value is None else value - t0
