"""The measured scenarios, against shoal (a subprocess) and then the floor, on one mesh.

For one `Cell` (S services, N proxies, sotw or delta, with or without Sidecar scoping) `run_cell`

1. puts the mesh (meshgen.py) where the backend keeps it (backends.py: a temporary config
   directory, one file per resource or every ServiceEntry in one file, or the fake
   Kubernetes API server) and starts ``shoal control-plane`` on it;
2. connects N simulated sidecars at once (**cold start**: time until every proxy has ACKed
   CDS, EDS, LDS and RDS), reads the control plane's RSS;
3. **endpoint changes**: gives one service's endpoints a new port (a ServiceEntry rewritten,
   or an EndpointSlice patched), and measures per
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
import collections
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadharness import procstat
from loadharness.backends import Mesh, file_mesh
from loadharness.client import Fleet
from loadharness.measure import (
    SETTLE_S,
    Cell,
    CellResult,
    Change,
    Options,
    Side,
    cluster_of,
    cold_start,
    collect,
    identities,
    lat,
)
from loadharness.protocol import EDS, RDS
from loadharness.replay import floor_side

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.controlplane import ControlPlane
from meshgen import services as mesh_services

# a cell's mesh and control plane (backends.py): files, or the fake Kubernetes API
Backend = Callable[[Cell, Options], AbstractAsyncContextManager[Mesh]]


@dataclass
class Ctx:
    """What a scenario against shoal works with."""

    fleet: Fleet
    mesh: Mesh
    cell: Cell
    opts: Options

    @property
    def cp(self) -> ControlPlane:
        return self.mesh.cp


async def endpoint_change(ctx: Ctx, k: int) -> Change:
    fleet, cp, cell, opts = ctx.fleet, ctx.cp, ctx.cell, ctx.opts
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
    await ctx.mesh.set_endpoint_port(svc, cell.endpoints, port)

    def done() -> bool:
        recs = [fleet.proxies[i].state.types[EDS] for i in affected]
        return all(r.ack_of_port(cluster, port, t0) is not None for r in recs)

    await fleet.wait(done, opts.limit_s)
    await fleet.quiet(0.3, opts.limit_s)
    latencies = [
        lat(fleet.proxies[i].state.types[EDS].ack_of_port(cluster, port, t0), t0) for i in affected
    ]
    change = collect(fleet, t0, affected, latencies, EDS)
    change.cpu_s = cpu.stop()
    return change


async def vs_change(ctx: Ctx, k: int) -> Change:
    fleet, cp, cell, opts = ctx.fleet, ctx.cp, ctx.cell, ctx.opts
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
    await ctx.mesh.set_vs_weights(svc, 100 - v2, v2)

    def first(i: int) -> float | None:
        return fleet.proxies[i].state.types[RDS].first_ack_after(t0)

    await fleet.wait(lambda: all(first(i) is not None for i in affected), opts.limit_s)
    await fleet.quiet(0.3, opts.limit_s)
    change = collect(fleet, t0, affected, [lat(first(i), t0) for i in affected], RDS)
    change.cpu_s = cpu.stop()
    return change


async def churn(ctx: Ctx, side: Side) -> None:
    """``churn_rate`` endpoint edits per second, each its own service and port."""
    fleet, cp, cell, opts = ctx.fleet, ctx.cp, ctx.cell, ctx.opts
    assert cp.proc is not None
    specs = mesh_services(cell.services, cell.namespaces, cell.vs_fraction)
    edits: list[tuple[float, str, int, list[int]]] = []
    start = time.monotonic()
    next_rss = start
    count = max(1, round(opts.churn_s * opts.churn_rate))

    def converged(edit: tuple[float, str, int, list[int]]) -> bool:
        t0, cluster, port, affected = edit
        recs = (fleet.proxies[i].state.types[EDS] for i in affected)
        return all(r.ack_of_port(cluster, port, t0) is not None for r in recs)

    # Edits are checked oldest first, a couple per edit made, and a converged one is not
    # checked again. Checking all of them at the end took seconds of the harness's CPU at
    # 1,000 proxies, on the loop the simulated proxies run on: they answered late, and the
    # last edits of every run looked seconds slower than the rest.
    unconverged: collections.deque[tuple[float, str, int, list[int]]] = collections.deque()

    def prune(limit: int) -> bool:
        """Drop converged edits from the front (at most `limit`); True when none are left."""
        for _ in range(limit):
            if not unconverged or not converged(unconverged[0]):
                break
            unconverged.popleft()
        return not unconverged

    for k in range(count):
        await asyncio.sleep(max(0.0, start + k / opts.churn_rate - time.monotonic()))
        svc = specs[(k * 7 + 1) % len(specs)]
        cluster, port = cluster_of(svc.host), 20000 + k
        fleet.watch.add(cluster)
        affected = [
            i for i, p in enumerate(fleet.proxies) if cluster in p.state.types[EDS].subscribed
        ]
        t0 = time.monotonic()
        await ctx.mesh.set_endpoint_port(svc, cell.endpoints, port)
        edits.append((t0, cluster, port, affected))
        unconverged.append(edits[-1])
        prune(2)
        if t0 >= next_rss:
            side.rss_series.append((t0 - start, procstat.rss_mb(cp.proc.pid)))
            next_rss += 1.0

    await fleet.wait(lambda: prune(len(unconverged)), opts.limit_s)
    await fleet.quiet(0.3, opts.limit_s)
    side.rss_series.append((time.monotonic() - start, procstat.rss_mb(cp.proc.pid)))
    for t0, cluster, port, affected in edits:
        latencies = [
            lat(fleet.proxies[i].state.types[EDS].ack_of_port(cluster, port, t0), t0)
            for i in affected
        ]
        side.churn.append(Change(latencies, len(affected), 0, 0, {}, 0))


async def run_cell(
    cell: Cell, opts: Options, log: Any = print, backend: Backend = file_mesh
) -> CellResult:
    shoal = Side()
    async with backend(cell, opts) as mesh:
        cp = mesh.cp
        shoal.startup = dict(mesh.startup)
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
            await asyncio.sleep(SETTLE_S)
            shoal.rss_settled_mb = procstat.rss_mb(cp.proc.pid)
            captured = fleet.captured()
            ctx = Ctx(fleet, mesh, cell, opts)
            for k in range(opts.changes):
                shoal.eds.append(await endpoint_change(ctx, k))
            for k in range(opts.changes if opts.vs_changes is None else opts.vs_changes):
                shoal.vs.append(await vs_change(ctx, k))
            if opts.churn_s > 0:
                await churn(ctx, shoal)
            shoal.hwm_mb = procstat.hwm_mb(cp.proc.pid)
            shoal.stream_errors = fleet.errors()
        finally:
            await fleet.stop()
    floor = await floor_side(cell, shoal, captured, opts) if opts.floor else None
    return CellResult(cell, shoal, floor)


__all__ = ["Cell", "CellResult", "Change", "Options", "Side", "run_cell"]
