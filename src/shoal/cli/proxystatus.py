"""`shoal proxy-status`: is every connected proxy up to date with the control plane?

Reads the control plane's `/debug/syncz` (one entry per connected proxy, with the version
sent, the version ACKed and the last NACK per xDS type) and classifies each type as
istioctl does:

* SYNCED   -- the last version sent was ACKed;
* STALE    -- a version was sent and Envoy has not ACKed it (yet);
* NACK     -- Envoy's last answer for this type rejected what was sent (`nack` is set); its
              error is printed below the table;
* NOT SENT -- the proxy never asked for this type, or nothing was sent yet.

A NACK Envoy has since moved past (it ACKed a later answer) is history (`last_nack`): listed
below the table with its time, it does not change the state of a synced proxy.

NACKS counts every NACK of the stream (all types); LAG is how long the proxy has gone without
config it should have (the longest of its types, from the snapshot that produced the response
it has not ACKed; `0ms` when in sync), which Istio only logs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shoal.cli.fetch import (
    ENV_CONTROL_PLANE,
    FetchError,
    add_control_plane_flag,
    control_plane_url,
    get_json,
)
from shoal.cli.tables import print_json, render_table

TYPES = ("cds", "lds", "eds", "rds")
SYNCED = "SYNCED"
STALE = "STALE"
NACK = "NACK"
NOT_SENT = "NOT SENT"


def classify(status: Mapping[str, Any] | None) -> str:
    """The state of one xDS type from its syncz entry (None: the type is not listed)."""
    if not status:
        return NOT_SENT
    # A NACK wins over the version comparison: after a NACK, sent != acked too, but the
    # user needs to know Envoy refused it, not that it is merely slow.
    if status.get("nack"):
        return NACK
    sent = status.get("sent")
    if sent is None:
        return NOT_SENT
    return SYNCED if sent == status.get("acked") else STALE


def proxy_name(entry: Mapping[str, Any]) -> str:
    """`workload.namespace`, as istioctl names a pod; the node id if metadata is missing."""
    workload, namespace = entry.get("workload"), entry.get("namespace")
    if workload and namespace:
        return f"{workload}.{namespace}"
    return str(entry.get("node", "?"))


def short_version(version: str | None) -> str:
    """The content hash of a version `BOOTID-HASH` (the boot id is the same for every
    proxy of one control plane, so it only makes the column wider)."""
    if not version:
        return "-"
    return version.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class ProxyStatus:
    name: str
    node: str
    states: dict[str, str]  # xDS short type -> SYNCED / STALE / NACK / NOT SENT
    mode: str  # sotw / delta
    version: str
    nacks: tuple[tuple[str, str], ...]  # current: (type, Envoy's error text)
    # earlier NACKs no longer current: (type, Unix time, Envoy's error text)
    past_nacks: tuple[tuple[str, float, str], ...] = ()
    nack_count: int = 0
    lag_ms: int = 0
    # the WorkloadEntry it auto-registered (WorkloadGroup), and whether it is served now
    workload_entry: str = ""
    serving: bool = False

    def row(self) -> list[str]:
        return [
            self.name,
            *(self.states[t] for t in TYPES),
            self.mode,
            self.version,
            str(self.nack_count),
            f"{self.lag_ms}ms",
        ]


def proxy_statuses(syncz: Sequence[Mapping[str, Any]]) -> list[ProxyStatus]:
    """One ProxyStatus per syncz entry, sorted by name then node id."""
    out = []
    for entry in syncz:
        types: Mapping[str, Any] = entry.get("types") or {}
        cds = types.get("cds") or {}
        out.append(
            ProxyStatus(
                name=proxy_name(entry),
                node=str(entry.get("node", "")),
                states={t: classify(types.get(t)) for t in TYPES},
                mode="delta" if entry.get("delta") else "sotw",
                version=short_version(cds.get("acked") or cds.get("sent")),
                nacks=tuple(
                    (t, str(types[t]["nack"]))
                    for t in sorted(types)
                    if (types[t] or {}).get("nack")
                ),
                past_nacks=_past_nacks(types),
                nack_count=sum(int((v or {}).get("nacks") or 0) for v in types.values()),
                lag_ms=max((int((v or {}).get("lag_ms") or 0) for v in types.values()), default=0),
                workload_entry=str(entry.get("workload_entry") or ""),
                serving=bool(entry.get("serving")),
            )
        )
    return sorted(out, key=lambda p: (p.name, p.node))


def _past_nacks(types: Mapping[str, Any]) -> tuple[tuple[str, float, str], ...]:
    out = []
    for t in sorted(types):
        status = types[t] or {}
        last = status.get("last_nack")
        if isinstance(last, Mapping) and not status.get("nack"):
            out.append((t, float(last.get("at") or 0.0), str(last.get("error", ""))))
    return tuple(out)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "?"


COLUMNS = ("NAME", "CDS", "LDS", "EDS", "RDS", "MODE", "VERSION", "NACKS", "LAG")


def print_status(statuses: Sequence[ProxyStatus]) -> None:
    render_table(COLUMNS, [s.row() for s in statuses])
    nacked = [s for s in statuses if s.nacks]
    if nacked:
        print()
        print("Rejected by Envoy (NACK):")
        for s in nacked:
            for xds_type, error in s.nacks:
                print(f"  {s.name} {xds_type.upper()}: {error}")
    joined = [s for s in statuses if s.workload_entry]
    if joined:
        print()
        print("Auto-registered (WorkloadGroup):")
        for s in joined:
            state = "serving" if s.serving else "not serving (probe not passing)"
            print(f"  {s.name}: WorkloadEntry {s.workload_entry}, {state}")
    healed = [s for s in statuses if s.past_nacks]
    if healed:
        print()
        print("Rejected earlier, accepted since (last NACK):")
        for s in healed:
            for xds_type, at, error in s.past_nacks:
                print(f"  {s.name} {xds_type.upper()} at {_when(at)}: {error}")


def fetch_syncz(url: str) -> list[dict[str, Any]]:
    """The control plane's /debug/syncz list; FetchError says how to point at another."""
    try:
        data = get_json(f"{url}/debug/syncz", "the control plane")
    except FetchError as err:
        raise FetchError(
            f"{err}\n(is `shoal control-plane` running there? "
            f"Use --control-plane URL or ${ENV_CONTROL_PLANE} to name another)"
        ) from err
    if not isinstance(data, list):
        raise FetchError(f"the control plane at {url}: /debug/syncz is not a JSON list")
    return data


def run(args: argparse.Namespace) -> int:
    url = control_plane_url(args.control_plane)
    try:
        syncz = fetch_syncz(url)
    except FetchError as err:
        print(f"shoal proxy-status: {err}", file=sys.stderr)
        return 1
    if args.output == "json":
        print_json(syncz)
        return 0
    if not syncz:
        print(f"no proxies are connected to the control plane at {url}")
        return 0
    print_status(proxy_statuses(syncz))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proxy-status",
        help="per proxy and xDS type: SYNCED, STALE, NACK or NOT SENT",
        description="Show whether each connected proxy has ACKed the configuration the "
        "control plane sent it (from GET /debug/syncz).",
    )
    add_control_plane_flag(p)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=run)
