"""`shoal top WORKLOAD`: a workload's busiest paths, live (like `linkerd viz top`).

Every request a replica of WORKLOAD serves (`--outbound`: sends), grouped by source,
destination, method and path: COUNT seen since the command started, SUCCESS (answered and
not a 5xx), and the BEST, WORST and LAST latency. The requests come from the same idle tap
filters as `shoal tap` (see tapcmd.py for why a tap and not a log stream), attached only
while the command runs.

Live, the table is redrawn every `--refresh` until Ctrl-C. `--once` (for scripts and tests)
watches for `--window` and prints the table once; `--json` does the same as a JSON list.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from shoal.cli.statcmd import parse_window
from shoal.cli.tables import print_json, render_table
from shoal.cli.tapcmd import add_tap_flags, attach, ms
from shoal.telemetry.tapstream import TapFanIn
from shoal.telemetry.top import Row, Top

COLUMNS = (
    "SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "SUCCESS", "BEST", "WORST", "LAST"
)  # fmt: skip
_CLEAR = "\x1b[H\x1b[2J"


def rows(table: Sequence[Row]) -> list[list[str]]:
    return [
        [
            r.source or "-",
            r.destination or "-",
            r.method or "-",
            r.path or "-",
            str(r.count),
            f"{r.success * 100:.2f}%",
            ms(r.best_ms),
            ms(r.worst_ms),
            ms(r.last_ms),
        ]
        for r in table
    ]


def _collect(fan: TapFanIn, top: Top, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not fan.ended and (left := deadline - time.monotonic()) > 0:
        top.add(fan.get(timeout=min(left, 0.5)))


def _print(top: Top, limit: int, json_out: bool) -> None:
    table = top.rows(limit)
    if json_out:
        print_json([r.__dict__ for r in table])
    elif table:
        render_table(COLUMNS, rows(table))
    else:
        print("no requests seen")


def run(args: argparse.Namespace) -> int:
    json_out = args.json or args.output == "json"
    once = args.once or json_out
    fan = attach(args, "top")
    if fan is None:
        return 1
    top = Top()
    started = time.monotonic()
    try:
        if once:
            _collect(fan, top, args.window)
            _print(top, args.rows, json_out)
            return 0
        while not fan.ended:
            _collect(fan, top, args.refresh)
            took = time.monotonic() - started
            sys.stdout.write(_CLEAR)
            print(f"{args.workload}: {top.total} requests in {took:.0f}s (Ctrl-C to stop)\n")
            _print(top, args.rows, False)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        fan.close()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "top",
        help="a workload's busiest paths, live: count, success, best/worst/last latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tap_flags(p)
    p.add_argument("--refresh", type=parse_window, default=2.0, help="redraw every (default 2s)")
    p.add_argument("--rows", type=int, default=20, help="show the busiest N (default 20)")
    p.add_argument("--once", action="store_true", help="watch for --window, print once, exit")
    p.add_argument("--window", type=parse_window, default=10.0, help="with --once (default 10s)")
    p.add_argument("--json", action="store_true", help="--once, as JSON")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=run)
