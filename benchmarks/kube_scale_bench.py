"""Kubernetes scale: shoal on the fake API server beside the same mesh from files and the floor.

One run, three sides, the same mesh (meshgen.py's S services x E endpoints over K namespaces,
DestinationRules, VirtualServices on half) and the same N simulated sidecars
(loadharness/client.py):

1. **Kubernetes**: the mesh as Services, Pods and EndpointSlices (kubemesh.py) and the Istio
   objects as custom objects, in the fake API server (tests/harness/kubeapi, its own process);
   ``shoal control-plane --kubernetes --kubeconfig F``. Informer cold sync, memory, cold start,
   then endpoint changes: one EndpointSlice's port patched over HTTP, timed until every
   affected sidecar ACKed EDS carrying the new port.
2. **floor**: the Kubernetes side's fan-outs replayed on a trivial ADS server
   (loadharness/replay.py): the fan-out alone, with no config logic.
3. **files**: the same mesh as files, ``shoal control-plane --config-dir``; the same endpoint
   change made by rewriting the ServiceEntry.

    .venv/bin/python benchmarks/kube_scale_bench.py            # 1,000 Services, 10,000 pods,
                                                                # 1,000 sidecars (delta xDS)
    .venv/bin/python benchmarks/kube_scale_bench.py --sotw --scoped
    .venv/bin/python benchmarks/kube_scale_bench.py --quick    # tiny: a smoke test (~20 s)

See benchmarks/README.md for what each figure means and the latest figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadharness.backends import file_mesh, kube_mesh
from loadharness.figures import fanout, machine, median, met, ms, pooled, ratio, secs
from loadharness.measure import Cell, CellResult, Options, Side
from loadharness.resources import clear_interned
from loadharness.scenarios import run_cell

P99_GOAL_S = 0.5


def _startup(side: Side | None, key: str) -> float:
    return math.nan if side is None else side.startup.get(key, math.nan)


def table(kube: CellResult, files: CellResult | None) -> str:
    k, fl = kube.shoal, kube.floor or Side()
    f = files.shoal if files is not None else Side()
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        name: str, a: str, b: str = "-", c: str = "-", *, target: str = "", ok: str = ""
    ) -> None:
        rows.append((name, a, b, c, target, ok))

    def mb(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:.0f}"

    row("objects in the API server", f"{_startup(k, 'objects'):.0f}")
    row("  stored by the fake before it served (s)", secs(_startup(k, "seed_s")))
    row("informer cold sync: every type listed (s)", secs(_startup(k, "sync_s")))
    row("control plane start -> /ready (s)", secs(_startup(k, "ready_s")), secs(f.startup.get(
        "ready_s", math.nan)))  # fmt: skip
    row("control plane RSS at /ready, no proxy yet (MB)", mb(_startup(k, "ready_rss_mb")),
        mb(f.startup.get("ready_rss_mb", math.nan)))  # fmt: skip
    row("fake API server RSS (MB)", mb(_startup(k, "apiserver_rss_mb")))
    row("cold start: every sidecar ACKed all (s)", secs(k.cold_s), secs(f.cold_s), secs(fl.cold_s))
    row("control plane RSS 2 s after cold start (MB)", mb(k.rss_settled_mb), mb(f.rss_settled_mb),
        mb(fl.rss_settled_mb))  # fmt: skip
    row("control plane peak RSS, VmHWM (MB)", mb(k.hwm_mb), mb(f.hwm_mb), mb(fl.hwm_mb))
    p50, p99 = pooled(k.eds, 50), pooled(k.eds, 99)
    row("endpoint change: p50 sidecar ACKed (ms)", ms(p50), ms(pooled(f.eds, 50)),
        ms(pooled(fl.eds, 50)))  # fmt: skip
    row("endpoint change: p99 sidecar ACKed (ms)", ms(p99), ms(pooled(f.eds, 99)),
        ms(pooled(fl.eds, 99)), target=f"<= {P99_GOAL_S * 1000:.0f}",
        ok=met(None if math.isnan(p99) else p99 <= P99_GOAL_S))  # fmt: skip
    fan, ffan = fanout(k.eds), fanout(fl.eds)
    row("endpoint change: 1st push -> all ACKed (ms)", ms(fan), ms(fanout(f.eds)), ms(ffan),
        target="<= 2x floor", ok=met(None if math.isnan(ffan) else fan <= 2 * ffan))  # fmt: skip
    fp99 = pooled(fl.eds, 99)
    row("endpoint change: p99 / floor's p99", ratio(p99, fp99), ratio(pooled(f.eds, 99), fp99))
    row("endpoint change: p99 Kubernetes / files", ratio(p99, pooled(f.eds, 99)))
    cpu = [f"{median([c.cpu_s for c in side.eds]):.2f}" for side in (k, f, fl)]
    row("CPU s per endpoint change (control plane)", *cpu)
    if k.vs:
        row("VS change (kubectl-style patch): p99 ACKed (ms)", ms(pooled(k.vs, 99)),
            ms(pooled(f.vs, 99)), ms(pooled(fl.vs, 99)))  # fmt: skip
    if k.eds:
        last = k.eds[-1]
        row("endpoint change: sidecars receiving / affected", f"{last.receivers}/{last.affected}")
        row("endpoint change: unaffected receiving", str(last.outside), target="0",
            ok=met(last.outside == 0))  # fmt: skip
        row("endpoint change: responses by type",
            ",".join(f"{t}:{n}" for t, n in sorted(last.types.items())))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    cell = kube.cell
    lines = [
        f"== {cell.services} Services x {cell.endpoints} pods in {cell.namespaces} namespaces "
        f"({cell.services * cell.endpoints} pods), {cell.proxies} simulated sidecars, "
        f"{'delta' if cell.delta else 'state of the world'}"
        f"{', Sidecar ./* per namespace' if cell.scoped else ''} ==",
        f"{'figure':<{width}}  {'kubernetes':>10}  {'files':>9}  {'floor':>9}  {'target':<12} met",
    ]
    for name, a, b, c, target, ok in rows:
        lines.append(f"{name:<{width}}  {a:>10}  {b:>9}  {c:>9}  {target:<12} {ok}")
    for name, side in (("kubernetes", k), ("files", f)):
        for err in side.config_errors[:3]:
            lines.append(f"!! {name}: config refused by shoal: {err}")
        if side.stream_errors:
            lines.append(f"!! {name}: {len(side.stream_errors)} streams failed (reconnected)")
    return "\n".join(lines)


def _fresh() -> None:
    # as scale_bench does per cell: what the last side left is collected and frozen away
    clear_interned()
    gc.collect()
    gc.freeze()


async def _run(
    cell: Cell, opts: Options, with_files: bool, files_first: bool
) -> tuple[CellResult, CellResult | None]:
    def log(m: str) -> None:
        print(m, flush=True)

    async def files_side() -> CellResult:
        print("files side ...", flush=True)
        _fresh()
        no_floor = Options(**{**opts.__dict__, "floor": False})
        return await run_cell(cell, no_floor, log=log, backend=file_mesh)

    files = await files_side() if with_files and files_first else None
    print("kubernetes side (then its floor) ...", flush=True)
    _fresh()
    kube = await run_cell(cell, opts, log=log, backend=kube_mesh)
    if with_files and not files_first:
        files = await files_side()
    return kube, files


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny: 12 Services x 3 pods, 12 sidecars")
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--pods-per-service", type=int, default=10)
    p.add_argument("--namespaces", type=int, default=10)
    p.add_argument("--sidecars", type=int, default=1000)
    p.add_argument("--sotw", action="store_true", help="state-of-the-world xDS (default delta)")
    p.add_argument("--scoped", action="store_true", help="a Sidecar egress ./* per namespace")
    p.add_argument("--changes", type=int, default=5, help="endpoint changes per side")
    p.add_argument("--vs-changes", type=int, default=0, help="VirtualService changes per side")
    p.add_argument("--debounce-ms", type=int, default=None, help="default: shoal's (100)")
    p.add_argument("--no-files", action="store_true", help="skip the files side")
    p.add_argument("--no-floor", action="store_true", help="skip the floor")
    p.add_argument("--files-first", action="store_true", help="run the files side first")
    args = p.parse_args(argv)
    if args.quick:
        args.services, args.pods_per_service, args.namespaces = 12, 3, 3
        args.sidecars, args.changes = 12, 2
    cell = Cell(
        args.services, args.sidecars, delta=not args.sotw, scoped=args.scoped,
        endpoints=args.pods_per_service, namespaces=args.namespaces,
    )  # fmt: skip
    opts = Options(
        changes=args.changes, vs_changes=args.vs_changes, churn_s=0.0,
        debounce_ms=args.debounce_ms, floor=not args.no_floor,
    )  # fmt: skip
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    print(f"shoal Kubernetes scale benchmark; machine: {machine()}", flush=True)
    kube, files = asyncio.run(_run(cell, opts, not args.no_files, args.files_first))
    print(table(kube, files))
    print(f"(total benchmark time {time.perf_counter() - started:.0f} s; {machine()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
