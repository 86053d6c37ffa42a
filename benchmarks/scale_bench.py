"""Control-plane scale: N simulated sidecars against ``shoal control-plane``, beside the floor.

Each cell of the matrix (S services x 10 endpoints over 10 namespaces, N simulated sidecars,
state of the world or delta, with or without a ``Sidecar`` egress ``./*`` per namespace) runs
the scenarios of ``loadharness/scenarios.py`` against shoal and then replays the same fan-out
on a trivial pre-serialized ADS server (the floor). Every figure is printed beside the floor's
and as a ratio, because this 2-core machine is shared and noisy.

    .venv/bin/python benchmarks/scale_bench.py              # --quick: a few minutes
    .venv/bin/python benchmarks/scale_bench.py --full       # the whole matrix
    .venv/bin/python benchmarks/scale_bench.py --cells 1000:1000:sotw:off --churn-s 60

A cell is ``S:N:sotw|delta:off|on[:files|onefile]``: ``onefile`` puts every ServiceEntry in one
``registry.yaml`` (an endpoint edit rewrites that 1.1 MB file), ``files`` (the default) one
resource per file. See benchmarks/README.md for what each figure means.
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

from loadharness.figures import fanout, machine, median, met, ms, per_change, pooled, ratio, secs
from loadharness.resources import clear_interned
from loadharness.scenarios import Cell, CellResult, Options, Side, run_cell

QUICK = ["100:100:sotw:off", "100:100:delta:off", "1000:1000:sotw:on", "1000:1000:sotw:off"]
FULL = [
    *(f"{s}:100:sotw:off" for s in (100, 1000, 5000)),  # growth with services
    *(f"1000:{n}:sotw:off" for n in (500, 1000)),  # growth with proxies (100: the line above)
    "1000:100:delta:off",
    "1000:1000:delta:off",
    "1000:1000:sotw:on",
    "1000:1000:delta:on",
    "1000:1000:sotw:off:onefile",
    "1000:1000:delta:off:onefile",
]
# The cells issue 12's endpoint target is judged on: no scoping, sotw and delta, both layouts.
TARGETS = [f"1000:1000:{m}:off:{lay}" for m in ("sotw", "delta") for lay in ("files", "onefile")]


CELL = "S:N:sotw|delta:off|on[:files|onefile]"


def parse_cell(text: str) -> Cell:
    parts = text.split(":")
    if len(parts) == 4:
        parts.append("files")
    if len(parts) != 5:
        raise argparse.ArgumentTypeError(f"bad cell {text!r}: want {CELL}")
    s, n, mode, scope, layout = parts
    if mode not in ("sotw", "delta") or scope not in ("off", "on"):
        raise argparse.ArgumentTypeError(f"bad cell {text!r}: want {CELL}")
    if layout not in ("files", "onefile"):
        raise argparse.ArgumentTypeError(f"bad cell {text!r}: want {CELL}")
    return Cell(
        int(s), int(n), delta=mode == "delta", scoped=scope == "on", one_file=layout == "onefile"
    )


def cell_table(res: CellResult) -> str:
    sh, fl = res.shoal, res.floor or Side()
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        name: str, a: float, b: float, fmt: str, *, target: str = "", ok: bool | None = None
    ) -> None:
        f = ms if fmt == "ms" else secs
        rows.append((name, f(a), f(b), ratio(a, b), target, met(ok)))

    row(
        "cold start: all ACKed (s)", sh.cold_s, fl.cold_s, "s", target="<= 10 s", ok=sh.cold_s <= 10
    )
    row("cold start: p50 proxy synced (s)", sh.cold_p50_s, fl.cold_p50_s, "s")
    eds50, feds50 = pooled(sh.eds, 50), pooled(fl.eds, 50)
    eds99, feds99 = pooled(sh.eds, 99), pooled(fl.eds, 99)
    row("endpoint change: p50 proxy ACKed (ms)", eds50, feds50, "ms")
    row(
        "endpoint change: p99 proxy ACKed (ms)",
        eds99,
        feds99,
        "ms",
        target="<= 500",
        ok=eds99 <= 0.5,
    )
    sh_all, fl_all = per_change(sh.eds, 50), per_change(fl.eds, 50)
    row("endpoint change: all ACKed, p50 (ms)", sh_all, fl_all, "ms")
    fan, ffan = fanout(sh.eds), fanout(fl.eds)
    ok = None if math.isnan(ffan) else fan <= 2 * ffan
    row("endpoint change: 1st push -> all ACKed (ms)", fan, ffan, "ms", target="<= 2x floor", ok=ok)
    vs99, fvs99 = pooled(sh.vs, 99), pooled(fl.vs, 99)
    row("VS change: p99 affected ACKed (ms)", vs99, fvs99, "ms", target="<= 1000", ok=vs99 <= 1)
    row("VS change: 1st push -> all ACKed (ms)", fanout(sh.vs), fanout(fl.vs), "ms")
    if sh.churn:
        ch50, fch50 = per_change(sh.churn, 50), per_change(fl.churn, 50)
        ch99, fch99 = per_change(sh.churn, 99), per_change(fl.churn, 99)
        row("churn: all ACKed per edit, p50 (ms)", ch50, fch50, "ms")
        row(
            "churn: all ACKed per edit, p99 (ms)", ch99, fch99, "ms", target="<= 1000", ok=ch99 <= 1
        )
    cpu_eds = median([c.cpu_s for c in sh.eds])
    row("CPU s per endpoint change", cpu_eds, median([c.cpu_s for c in fl.eds]), "s")
    row(
        "CPU s per VS change",
        median([c.cpu_s for c in sh.vs]),
        median([c.cpu_s for c in fl.vs]),
        "s",
    )
    row("CPU s for the cold start", sh.cpu_cold_s, math.nan, "s")
    rows.append(
        (
            "RSS after cold start (MB)",
            f"{sh.rss_mb:.0f}",
            f"{fl.rss_mb:.0f}",
            ratio(sh.rss_mb, fl.rss_mb),
            "",
            "-",
        )
    )
    rows.append(
        (
            "RSS 2 s after cold start (MB)",
            f"{sh.rss_settled_mb:.0f}",
            f"{fl.rss_settled_mb:.0f}",
            ratio(sh.rss_settled_mb, fl.rss_settled_mb),
            "<= 500",
            met(sh.rss_settled_mb <= 500),
        )
    )
    peak = ("peak RSS, VmHWM (MB)", f"{sh.hwm_mb:.0f}", f"{fl.hwm_mb:.0f}")
    rows.append((*peak, ratio(sh.hwm_mb, fl.hwm_mb), "<= 500", met(sh.hwm_mb <= 500)))
    if sh.rss_series:
        step = max(1, math.ceil(len(sh.rss_series) / 12))  # about a dozen samples
        kept = sh.rss_series[::step]
        if kept[-1] is not sh.rss_series[-1]:
            kept.append(sh.rss_series[-1])
        series = " ".join(f"{mb:.0f}" for _, mb in kept)
        rows.append((f"churn: RSS every {step} s (MB)", series, "", "", "flat", ""))
    for label, changes in (("endpoint", sh.eds), ("VS", sh.vs)):
        if changes:
            c = changes[-1]
            types = ",".join(f"{k}:{v}" for k, v in sorted(c.types.items()))
            rows.append(
                (
                    f"{label} change: proxies receiving / affected",
                    f"{c.receivers}/{c.affected}",
                    "",
                    "",
                    "",
                    "",
                )
            )
            rows.append(
                (
                    f"{label} change: unaffected receiving",
                    str(c.outside),
                    "",
                    "",
                    "0",
                    met(c.outside == 0),
                )
            )
            rows.append((f"{label} change: responses by type", types, "", "", "", ""))
            rows.append((f"{label} change: MB sent", f"{c.nbytes / 1e6:.1f}", "", "", "", ""))
    width = max(len(r[0]) for r in rows)
    head = f"{'figure':<{width}}  {'shoal':>9}  {'floor':>9}  {'ratio':>6}  {'target':<16} met"
    lines = [
        f"== {res.cell.label}: {res.cell.services} services x {res.cell.endpoints} endpoints "
        f"in {res.cell.namespaces} namespaces, {res.cell.proxies} simulated sidecars ==",
        head,
    ]
    for name, a, b, r, target, verdict in rows:
        lines.append(f"{name:<{width}}  {a:>9}  {b:>9}  {r:>6}  {target:<16} {verdict}")
    for err in sh.config_errors[:3]:
        lines.append(f"!! config refused by shoal: {err}")
    if len(sh.config_errors) > 3:
        lines.append(f"!! ... and {len(sh.config_errors) - 3} more config errors")
    for name, side in (("shoal", sh), ("floor", fl)):
        if side.stream_errors:
            kinds = sorted(set(side.stream_errors))[:3]
            lines.append(
                f"!! {name}: {len(side.stream_errors)} streams failed (each reconnected): {kinds}"
            )
    return "\n".join(lines)


def matrix_table(results: list[CellResult]) -> str:
    """One line per cell: shoal, the floor beside it, and the ratio where it matters."""
    head = (
        f"{'cell':<30} {'cold s':>6} {'floor':>6} {'EDS p99':>7} {'fan-out':>7} {'floor':>6} "
        f"{'ratio':>6} {'VS p99':>6} {'VS recv/aff':>11} {'peak MB':>7} {'CPU s/EDS':>9} "
        f"{'churn p99':>9}"
    )
    lines = [head, f"{'':<30} {'':>6} {'':>6} {'ms':>7} {'ms':>7} {'ms':>6} {'':>6} {'ms':>6}"]
    for res in results:
        sh, fl = res.shoal, res.floor or Side()
        fan, ffan = fanout(sh.eds), fanout(fl.eds)
        vs = sh.vs[-1] if sh.vs else None
        recv = f"{vs.receivers}/{vs.affected}" if vs else "-"
        lines.append(
            f"{res.cell.label:<30} {secs(sh.cold_s):>6} {secs(fl.cold_s):>6} "
            f"{ms(pooled(sh.eds, 99)):>7} {ms(fan):>7} {ms(ffan):>6} {ratio(fan, ffan):>6} "
            f"{ms(pooled(sh.vs, 99)):>6} {recv:>11} {sh.hwm_mb:>7.0f} "
            f"{median([c.cpu_s for c in sh.eds]):>9.2f} {ms(per_change(sh.churn, 99)):>9}"
        )
    lines += [
        "EDS p99: ServiceEntry write -> p99 proxy ACKed (file watcher, debounce, reload, push)",
        "fan-out: first EDS response -> every affected proxy ACKed; floor: the same fan-out",
        "VS recv/aff: proxies that received anything / proxies the VirtualService affects",
        "peak MB: control plane VmHWM; churn p99: per edit, until every affected proxy ACKed",
    ]
    return "\n".join(lines)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


async def _run(cells: list[Cell], opts: Options) -> list[CellResult]:
    results = []
    for cell in cells:
        # Each cell starts from a harness as fresh as one process allows: what earlier cells
        # left (results, interned names, garbage) is collected once and then frozen out of the
        # collector's way, so this cell's simulated proxies are not slowed by walking it.
        clear_interned()
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        print(f"running {cell.label} ...", flush=True)
        res = await run_cell(cell, opts, log=lambda m: print(m, flush=True))
        print(cell_table(res), flush=True)
        print(f"({cell.label} took {time.perf_counter() - started:.0f} s)\n", flush=True)
        results.append(res)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="the default: " + " ".join(QUICK))
    preset.add_argument("--full", action="store_true", help="the matrix: " + " ".join(FULL))
    preset.add_argument("--targets", action="store_true", help="the cells: " + " ".join(TARGETS))
    preset.add_argument("--cells", type=parse_cell, nargs="+", help=CELL + " ...")
    parser.add_argument("--changes", type=int, default=None, help="endpoint and VS edits per cell")
    parser.add_argument("--churn-s", type=float, default=None, help="churn duration (0: none)")
    parser.add_argument("--churn-rate", type=float, default=10.0, help="endpoint edits per second")
    parser.add_argument("--debounce-ms", type=int, default=None, help="default: shoal's (100)")
    parser.add_argument("--per-channel", type=int, default=64, help="streams per HTTP/2 connection")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor runs")
    args = parser.parse_args(argv)
    preset_cells = FULL if args.full else TARGETS if args.targets else QUICK
    cells = args.cells or [parse_cell(c) for c in preset_cells]
    churn_s = args.churn_s if args.churn_s is not None else (60.0 if args.full else 10.0)
    opts = Options(
        changes=args.changes or (5 if args.full else 3),
        churn_s=churn_s,
        churn_rate=args.churn_rate,
        debounce_ms=args.debounce_ms,
        per_channel=args.per_channel,
        floor=not args.no_floor,
    )
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    print(f"shoal scale benchmark; machine: {machine()}", flush=True)
    print(
        f"{opts.changes} endpoint + {opts.changes} VS changes per cell, churn {opts.churn_s:.0f} s "
        f"at {opts.churn_rate:g}/s, debounce {args.debounce_ms or 'default'} ms\n",
        flush=True,
    )
    results = asyncio.run(_run(cells, opts))
    print("== summary (shoal; floor beside where measured) ==")
    print(matrix_table(results))
    print(f"(total benchmark time {time.perf_counter() - started:.0f} s; {machine()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
