"""The floor's side of a cell: the same fan-out as shoal's, replayed on `FloorProcess`.

A fresh fleet with the same identities connects to the floor (cold start with the resources
shoal's proxy 0 held); then for every change shoal made, the floor pushes the bytes shoal sent
the first affected proxy to exactly the nodes shoal sent that type to; and the churn's rate and
duration with the fan-out of shoal's first endpoint change.
"""

from __future__ import annotations

import asyncio
import time

from loadharness import procstat
from loadharness.client import Fleet
from loadharness.floor import FloorProcess
from loadharness.measure import (
    SETTLE_S,
    Cell,
    Change,
    Options,
    Side,
    cold_start,
    collect,
    identities,
    lat,
)
from loadharness.protocol import EDS, RDS


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
    change = collect(fleet, t0, targets, [lat(ack(i), t0) for i in targets], type_url)
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
        latencies = [lat(ack(i, version), t0) for i in targets]
        side.churn.append(Change(latencies, len(targets), 0, 0, {}, 0))


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
            await asyncio.sleep(SETTLE_S)
            side.rss_settled_mb = procstat.rss_mb(floor.pid)
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
