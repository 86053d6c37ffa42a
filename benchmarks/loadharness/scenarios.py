"""The measured scenarios, against shoal (a subprocess) and then the floor, on one mesh.

For one `Cell` (S services, N proxies, sotw or delta, with or without Sidecar scoping) `run_cell`

1. writes the mesh (meshgen.py) to a temporary config directory and starts
   ``shoal control-plane`` on it (tests/harness's `ControlPlane`);
2. connects N simulated sidecars at once (**cold start**: time until every proxy has ACKed
   CDS, EDS, LDS and RDS), reads the control plane's RSS;
3. **endpoint changes**: rewrites one ServiceEntry with a new endpoint port, and measures per
   affected proxy (every proxy subscribed to that cluster's EDS) when it ACKed an EDS response
   carrying the new port, the proxies that received anything, and the control plane's CPU
   seconds (utime+stime) from the write until the fleet is quiet again;
4. **VirtualService changes**: new weights; per expected-affected proxy (all proxies, or the
   VirtualService's namespace with Sidecar scoping) its first RDS ACK after the write, and how
   many proxies received anything;
5. **churn**: ``rate`` ServiceEntry edits per second for ``churn_s`` seconds, each with its own
   port, so each edit's convergence is known exactly; RSS sampled every second;
6. stops shoal and replays the same fan-out on the floor (`FloorProcess`) with a fresh fleet of
   the same identities: cold start with the resources proxy 0 held, then for every change the
   bytes shoal sent proxy 0, to exactly the nodes shoal sent them to.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadharness import procstat
from loadharness.client import Fleet, total_bytes
from loadharness.floor import FloorProcess
from loadharness.protocol import EDS, RDS, TYPES, Identity

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from meshgen import (
    SERVICE_PORT,
    generate_mesh,
    namespaces,
    service_entry,
    virtual_service,
)
from meshgen import services as mesh_services


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

    @property
    def label(self) -> str:
        mode = "delta" if self.delta else "sotw"
        return f"S={self.services} N={self.proxies} {mode}{' scoped' if self.scoped else ''}"


@dataclass
class Options:
    changes: int = 5  # endpoint changes and VirtualService changes, each
    churn_s: float = 10.0
    churn_rate: float = 10.0
    debounce_ms: int | None = None  # None: the control plane's default (100 ms)
    per_channel: int = 64
    floor: bool = True
    limit_s: float = 60.0  # give up waiting for convergence after this long


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
    hwm_mb: float = math.nan
    rss_series: list[tuple[float, float]] = field(default_factory=list)
    cpu_cold_s: float = math.nan
    config_errors: list[str] = field(default_factory=list)
    stream_errors: list[str] = field(default_factory=list)


@dataclass
class CellResult:
    cell: Cell
    shoal: Side
    floor: Side | None


@dataclass
class Ctx:
    """What a scenario against shoal works with."""

    fleet: Fleet
    cp: ControlPlane
    config: ConfigDir
    cell: Cell
    opts: Options


def identities(cell: Cell) -> list[Identity]:
    names = namespaces(cell.namespaces)
    return [
        Identity(f"sim-{i}", names[i % len(names)], 20000 + i, 40000 + i % 20000)
        for i in range(cell.proxies)
    ]


def cluster_of(host: str) -> str:
    return f"outbound|{SERVICE_PORT}||{host}"


@contextlib.contextmanager
def control_plane(cell: Cell, opts: Options) -> Iterator[tuple[ControlPlane, ConfigDir]]:
    with tempfile.TemporaryDirectory(prefix="shoal-scale-") as tmp:
        config = ConfigDir(Path(tmp) / "config")
        files = generate_mesh(
            cell.services, cell.endpoints, cell.namespaces, cell.vs_fraction,
            sidecar_scope=cell.scoped,
        )  # fmt: skip
        for name, text in files.items():
            (config.path / name).parent.mkdir(parents=True, exist_ok=True)
            (config.path / name).write_text(text)
        cp = ControlPlane(config.path, workdir=Path(tmp), debounce_ms=opts.debounce_ms)
        try:
            cp.start()
            cp.wait_ready(timeout=120)
            yield cp, config
        except BaseException:
            print(f"--- control plane stderr (tail) ---\n{cp.stderr_tail(30)}", file=sys.stderr)
            raise
        finally:
            cp.stop()


async def cold_start(fleet: Fleet, side: Side, limit_s: float) -> None:
    t0 = await fleet.start()
    await fleet.wait(fleet.all_acked, limit_s)
    await fleet.quiet(0.5, limit_s)
    synced = sorted(t - t0 for t in fleet.synced_at())
    side.cold_s = synced[-1] if fleet.all_acked() else math.nan
    side.cold_p50_s = procstat.percentile(synced, 50)


def _collect(
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


def _lat(value: float | None, t0: float) -> float:
    return math.nan if value is None else value - t0


async def endpoint_change(ctx: Ctx, k: int) -> Change:
    fleet, cp, config, cell, opts = ctx.fleet, ctx.cp, ctx.config, ctx.cell, ctx.opts
    # services in `default` (where proxy 0, whose bytes the floor replays, lives)
    specs = mesh_services(cell.services, cell.namespaces, cell.vs_fraction)
    svc = specs[(k * cell.namespaces) % cell.services]
    cluster, port = cluster_of(svc.host), 9000 + k
    fleet.watch.add(cluster)
    assert cp.proc is not None
    cpu = procstat.CpuMeter(cp.proc.pid)
    affected = [i for i, p in enumerate(fleet.proxies) if cluster in p.state.types[EDS].subscribed]
    cpu.start()
    t0 = time.monotonic()
    config.write(svc.file("se"), service_entry(svc, cell.endpoints, port=port))

    def done() -> bool:
        recs = [fleet.proxies[i].state.types[EDS] for i in affected]
        return all(r.ack_of_port(cluster, port, t0) is not None for r in recs)

    await fleet.wait(done, opts.limit_s)
    await fleet.quiet(0.3, opts.limit_s)
    lat = [
        _lat(fleet.proxies[i].state.types[EDS].ack_of_port(cluster, port, t0), t0) for i in affected
    ]
    change = _collect(fleet, t0, affected, lat, EDS)
    change.cpu_s = cpu.stop()
    return change


async def vs_change(ctx: Ctx, k: int) -> Change:
    fleet, cp, config, cell, opts = ctx.fleet, ctx.cp, ctx.config, ctx.cell, ctx.opts
    svc = next(
        s for s in mesh_services(cell.services, cell.namespaces, cell.vs_fraction) if s.has_vs
    )
    affected = [
        i
        for i, p in enumerate(fleet.proxies)
        if not cell.scoped or p.state.identity.namespace == svc.namespace
    ]
    assert cp.proc is not None
    cpu = procstat.CpuMeter(cp.proc.pid)
    cpu.start()
    t0 = time.monotonic()
    v2 = 11 + k % 80
    config.write(svc.file("vs"), virtual_service(svc, 100 - v2, v2))

    def first(i: int) -> float | None:
        return fleet.proxies[i].state.types[RDS].first_ack_after(t0)

    await fleet.wait(lambda: all(first(i) is not None for i in affected), opts.limit_s)
    await fleet.quiet(0.3, opts.limit_s)
    change = _collect(fleet, t0, affected, [_lat(first(i), t0) for i in affected], RDS)
    change.cpu_s = cpu.stop()
    return change


async def churn(ctx: Ctx, side: Side) -> None:
    """``churn_rate`` endpoint edits per second, each its own service and port."""
    fleet, cp, config, cell, opts = ctx.fleet, ctx.cp, ctx.config, ctx.cell, ctx.opts
    assert cp.proc is not None
    specs = mesh_services(cell.services, cell.namespaces, cell.vs_fraction)
    edits: list[tuple[float, str, int, list[int]]] = []
    start = time.monotonic()
    next_rss = start
    count = max(1, round(opts.churn_s * opts.churn_rate))
    for k in range(count):
        await asyncio.sleep(max(0.0, start + k / opts.churn_rate - time.monotonic()))
        svc = specs[(k * 7 + 1) % len(specs)]
        cluster, port = cluster_of(svc.host), 20000 + k
        fleet.watch.add(cluster)
        affected = [
            i for i, p in enumerate(fleet.proxies) if cluster in p.state.types[EDS].subscribed
        ]
        t0 = time.monotonic()
        config.write(svc.file("se"), service_entry(svc, cell.endpoints, port=port))
        edits.append((t0, cluster, port, affected))
        if t0 >= next_rss:
            side.rss_series.append((t0 - start, procstat.rss_mb(cp.proc.pid)))
            next_rss += 1.0

    def converged(edit: tuple[float, str, int, list[int]]) -> bool:
        t0, cluster, port, affected = edit
        recs = (fleet.proxies[i].state.types[EDS] for i in affected)
        return all(r.ack_of_port(cluster, port, t0) is not None for r in recs)

    await fleet.wait(lambda: all(converged(e) for e in edits), opts.limit_s)
    await fleet.quiet(0.3, opts.limit_s)
    side.rss_series.append((time.monotonic() - start, procstat.rss_mb(cp.proc.pid)))
    for t0, cluster, port, affected in edits:
        lat = [
            _lat(fleet.proxies[i].state.types[EDS].ack_of_port(cluster, port, t0), t0)
            for i in affected
        ]
        side.churn.append(Change(lat, len(affected), 0, 0, {}, 0))


async def replay(fleet: Fleet, floor: FloorProcess, shoal: Change, type_url: str) -> Change:
    """Push on the floor what shoal sent proxy 0, to the nodes shoal sent ``type_url`` to."""
    index = {p.state.identity.node_id: i for i, p in enumerate(fleet.proxies)}
    targets = [index[n] for n in shoal.nodes if n in index]
    cpu = procstat.CpuMeter(floor.pid)
    cpu.start()
    t0 = time.monotonic()
    version = await floor.push(type_url, shoal.resources or None, set(shoal.nodes))

    def ack(i: int) -> float | None:
        return fleet.proxies[i].state.types[type_url].ack_of_version(version)

    await fleet.wait(lambda: all(ack(i) is not None for i in targets), 60)
    await fleet.quiet(0.3)
    change = _collect(fleet, t0, targets, [_lat(ack(i), t0) for i in targets], type_url)
    change.cpu_s = cpu.stop()
    return change


async def floor_churn(
    fleet: Fleet, floor: FloorProcess, shoal: Side, side: Side, opts: Options
) -> None:
    """The churn's pushes on the floor: same rate and duration, the fan-out and bytes of
    shoal's first endpoint change."""
    template = shoal.eds[0]
    index = {p.state.identity.node_id: i for i, p in enumerate(fleet.proxies)}
    targets = [index[n] for n in template.nodes if n in index]
    pushes: list[tuple[float, str]] = []
    start = time.monotonic()
    for k in range(max(1, round(opts.churn_s * opts.churn_rate))):
        await asyncio.sleep(max(0.0, start + k / opts.churn_rate - time.monotonic()))
        t0 = time.monotonic()
        pushes.append((t0, await floor.push(EDS, template.resources, set(template.nodes))))

    def ack(i: int, version: str) -> float | None:
        # pushes coalesce (one in flight per type): any later version has this one's content
        serial = int(version.rpartition("-")[2])
        return fleet.proxies[i].state.types[EDS].ack_of_serial(serial)

    await fleet.wait(lambda: all(ack(i, pushes[-1][1]) for i in targets), opts.limit_s)
    await fleet.quiet(0.3)
    for t0, version in pushes:
        lat = [_lat(ack(i, version), t0) for i in targets]
        side.churn.append(Change(lat, len(targets), 0, 0, {}, 0))


async def floor_side(
    cell: Cell, shoal: Side, captured: dict[str, list[bytes]], opts: Options
) -> Side:
    side = Side()
    floor = FloorProcess(captured)
    try:
        port = floor.start()
        fleet = Fleet(f"127.0.0.1:{port}", identities(cell), delta=cell.delta)
        try:
            await cold_start(fleet, side, 120)
            side.rss_mb = procstat.rss_mb(floor.pid)
            side.hwm_mb = procstat.hwm_mb(floor.pid)
            for change in shoal.eds:
                side.eds.append(await replay(fleet, floor, change, EDS))
            for change in shoal.vs:
                side.vs.append(await replay(fleet, floor, change, RDS))
            if shoal.churn and shoal.eds:
                await floor_churn(fleet, floor, shoal, side, opts)
            side.stream_errors = fleet.errors()
        finally:
            await fleet.stop()
    finally:
        floor.stop()
    return side


async def run_cell(cell: Cell, opts: Options, log: Any = print) -> CellResult:
    shoal = Side()
    with control_plane(cell, opts) as (cp, config):
        assert cp.proc is not None
        shoal.config_errors = [
            f"{e.get('file', '?')}:{e.get('line', '?')}: {e.get('message', e)}"
            for e in cp.config_status().get("errors", [])
        ]
        cpu = procstat.CpuMeter(cp.proc.pid)
        cpu.start()
        fleet = Fleet(
            f"127.0.0.1:{cp.xds_port}",
            identities(cell),
            delta=cell.delta,
            per_channel=opts.per_channel,
            capture=cell.namespaces,
        )
        try:
            await cold_start(fleet, shoal, opts.limit_s * 2)
            shoal.cpu_cold_s = cpu.stop()
            shoal.rss_mb = procstat.rss_mb(cp.proc.pid)
            log(
                f"  {cell.label}: cold start {shoal.cold_s:.2f} s, control plane RSS "
                f"{shoal.rss_mb:.0f} MB, harness RSS {procstat.rss_mb(os.getpid()):.0f} MB"
            )
            captured = fleet.captured()
            ctx = Ctx(fleet, cp, config, cell, opts)
            for k in range(opts.changes):
                shoal.eds.append(await endpoint_change(ctx, k))
            for k in range(opts.changes):
                shoal.vs.append(await vs_change(ctx, k))
            if opts.churn_s > 0:
                await churn(ctx, shoal)
            shoal.hwm_mb = procstat.hwm_mb(cp.proc.pid)
            shoal.stream_errors = fleet.errors()
        finally:
            await fleet.stop()
    floor = await floor_side(cell, shoal, captured, opts) if opts.floor else None
    return CellResult(cell, shoal, floor)


__all__ = ["TYPES", "Cell", "CellResult", "Change", "Options", "Side", "run_cell"]
