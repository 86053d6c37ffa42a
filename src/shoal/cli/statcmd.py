"""`shoal stat` and `shoal edges`: the mesh's golden signals, read from the proxies themselves.

Like `linkerd viz stat` / `linkerd viz edges`, but with no Prometheus: the proxies are found
through the control plane's Prometheus service discovery (`/debug/prometheus_sd`) and scraped
directly, twice, `--window` apart (the signals are what happened in between). Works the same
under `shoal up` and against a standalone control plane with `shoal agent` sidecars.

- `shoal stat` -- every workload of every namespace (NAMESPACE first);
- `shoal stat -n NS` -- that namespace's workloads; `shoal stat WORKLOAD -n NS` one of them;
- `shoal stat svc/NAME` -- a service, as its callers' sidecars saw it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence

from shoal.cli.fetch import FetchError, add_control_plane_flag, control_plane_url, get_json
from shoal.cli.tables import print_json, render_table
from shoal.telemetry import golden
from shoal.telemetry.scrape import Target, scrape, targets_from_sd

STAT_COLUMNS = (
    "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"
)  # fmt: skip
EDGE_COLUMNS = ("SRC", "DST", "SRC_NS", "DST_NS", "SECURED", "CLIENT_ID", "SERVER_ID")


def parse_window(text: str) -> float:
    """`10s`, `1m`, `500ms` or plain seconds."""
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, scale in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            value = float(text[: -len(suffix)]) * scale
            break
    else:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"window {text!r}: use e.g. 10s or 1m") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"window {text!r} must be positive")
    return value


def _targets(url: str) -> list[Target]:
    data = get_json(f"{url}/debug/prometheus_sd", "the control plane")
    return targets_from_sd(data)


def _replicas(targets: Sequence[Target]) -> dict[golden.Key, tuple[int, int]]:
    counts = Counter(
        (t.labels.get("namespace", ""), t.labels.get("workload", ""))
        for t in targets
        if t.labels.get("proxy_type", "sidecar") == "sidecar"
    )
    return {key: (n, n) for key, n in counts.items()}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def stat_rows(stats: Sequence[golden.Stat], *, by_service: bool, all_ns: bool) -> list[list[str]]:
    rows = []
    for s in stats:
        idle = s.requests == 0
        row = [
            s.name,
            "-" if by_service else f"{s.meshed}/{s.replicas}",
            _pct(s.success),
            "-" if idle else f"{s.rps:.1f}rps",
            _ms(s.p50),
            _ms(s.p95),
            _ms(s.p99),
            "-" if s.tcp_connections is None else str(s.tcp_connections),
        ]
        rows.append([s.namespace, *row] if all_ns else row)
    return rows


def _errors(errors: dict[str, str]) -> None:
    for address, why in sorted(errors.items()):
        print(f"shoal: proxy metrics at {address} unreadable: {why}", file=sys.stderr)


def run_stat(args: argparse.Namespace) -> int:
    url = control_plane_url(args.control_plane)
    by_service = bool(args.target and args.target.startswith("svc/"))
    name = args.target[4:] if by_service else args.target
    try:
        targets = _targets(url)
    except FetchError as err:
        print(f"shoal stat: {err}", file=sys.stderr)
        return 1
    if not targets:
        print(f"no proxy of the control plane at {url} serves metrics")
        return 0
    before = scrape(targets)
    # on stderr, so the table on stdout stays clean: the first scrape is done
    print(f"measuring {len(targets)} proxies for {args.window:g}s ...", file=sys.stderr, flush=True)
    time.sleep(args.window)
    after = scrape(targets)
    _errors(after.errors)
    replicas = {} if by_service else _replicas(targets)

    def keep(key: golden.Key) -> bool:
        namespace, row = key
        return (args.namespace is None or namespace == args.namespace) and (not name or row == name)

    stats = golden.stats(
        before.samples, after.samples, args.window, replicas, by_service=by_service, keep=keep
    )
    if args.output == "json":
        print_json([s.__dict__ for s in stats])
        return 0
    all_ns = args.namespace is None and not name
    columns = ("NAMESPACE", *STAT_COLUMNS) if all_ns else STAT_COLUMNS
    if not stats:
        what = f"service {name}" if by_service else f"workload {name}" if name else "workloads"
        print(f"no {what} found" + (f" in namespace {args.namespace}" if args.namespace else ""))
        return 1 if name else 0
    render_table(columns, stat_rows(stats, by_service=by_service, all_ns=all_ns))
    return 0


def run_edges(args: argparse.Namespace) -> int:
    url = control_plane_url(args.control_plane)
    try:
        targets = _targets(url)
    except FetchError as err:
        print(f"shoal edges: {err}", file=sys.stderr)
        return 1
    result = scrape(targets)
    _errors(result.errors)
    edges = [
        e
        for e in golden.edges(result.samples)
        if args.namespace is None or args.namespace in (e.src_namespace, e.dst_namespace)
    ]
    if args.output == "json":
        print_json([{**e.__dict__, "secured": e.secured} for e in edges])
        return 0
    if not edges:
        print("no traffic between workloads seen yet")
        return 0
    rows = [
        [
            e.src,
            e.dst or "unknown",
            e.src_namespace,
            e.dst_namespace or "unknown",
            "√" if e.secured else "-",
            e.client_id or "-",
            e.server_id or "-",
        ]
        for e in edges
    ]
    render_table(EDGE_COLUMNS, rows)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stat",
        help="golden signals per workload or service, read from the proxies (no Prometheus)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", nargs="?", help="WORKLOAD or svc/NAME (default: every workload)")
    p.add_argument("-n", "--namespace", help="only this namespace")
    p.add_argument(
        "--window",
        type=parse_window,
        default=10.0,
        help="measure over this long (e.g. 10s, 1m; default 10s)",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_control_plane_flag(p)
    p.set_defaults(func=run_stat)
    e = sub.add_parser(
        "edges",
        help="who talks to whom, and with which mTLS identities (from the callers' proxies)",
    )
    e.add_argument("-n", "--namespace", help="only edges from or to this namespace")
    e.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_control_plane_flag(e)
    e.set_defaults(func=run_edges)
