"""`shoal proxy-config clusters|listeners|routes|endpoints WORKLOAD`: what one Envoy holds.

The control plane's `/debug/syncz` says which proxies are connected and where each one's
Envoy admin API listens (from its `ADMIN_PORT` node metadata); the tables come from that
admin API itself (`/config_dump`, `/clusters?format=json`), so they show what Envoy
actually accepted, not what the control plane meant to send.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shoal.cli import envoyconfig
from shoal.cli.fetch import FetchError, add_control_plane_flag, control_plane_url, get_json
from shoal.cli.proxystatus import fetch_syncz, proxy_name
from shoal.cli.tables import print_json, render_table

Json = Mapping[str, Any]


class ProxyNotFound(Exception):
    """The workload named on the command line is not one connected proxy."""


@dataclass(frozen=True)
class View:
    """One `proxy-config` subject: which admin endpoint, which table, which JSON part."""

    path: str
    columns: Sequence[str]
    rows: Callable[[Json], list[list[str]]]
    raw: Callable[[Json], object]


VIEWS: Mapping[str, View] = MappingProxyType(
    {
        "clusters": View(
            "/config_dump",
            envoyconfig.CLUSTER_COLUMNS,
            envoyconfig.cluster_rows,
            lambda d: envoyconfig.section(d, "ClustersConfigDump"),
        ),
        "listeners": View(
            "/config_dump",
            envoyconfig.LISTENER_COLUMNS,
            envoyconfig.listener_rows,
            lambda d: envoyconfig.section(d, "ListenersConfigDump"),
        ),
        "routes": View(
            "/config_dump",
            envoyconfig.ROUTE_COLUMNS,
            envoyconfig.route_rows,
            lambda d: envoyconfig.section(d, "RoutesConfigDump"),
        ),
        # /clusters rather than the EDS part of the config dump: it has what the table shows,
        # each host's health and outlier-detection state, which the dump lacks.
        "endpoints": View(
            "/clusters?format=json",
            envoyconfig.ENDPOINT_COLUMNS,
            envoyconfig.endpoint_rows,
            lambda d: d,
        ),
    }
)


def find_proxy(syncz: Sequence[Json], workload: str) -> Json:
    """The one proxy `workload` names: its workload name, `workload.namespace`, or node id."""
    matches = [p for p in syncz if workload in (p.get("workload"), proxy_name(p), p.get("node"))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = sorted({proxy_name(p) for p in syncz})
        listing = ", ".join(known) if known else "none (no proxy is connected)"
        raise ProxyNotFound(f"no connected proxy is named {workload!r}; known workloads: {listing}")
    nodes = ", ".join(sorted(str(p.get("node")) for p in matches))
    raise ProxyNotFound(
        f"{workload!r} names {len(matches)} proxies ({nodes}); name one by its node id"
    )


def admin_address(proxy: Json) -> str:
    admin = proxy.get("admin")
    if not admin:
        raise ProxyNotFound(
            f"proxy {proxy.get('node')} did not send ADMIN_PORT in its node metadata, so the "
            "control plane does not know where its Envoy admin API listens; add "
            'ADMIN_PORT: "<admin port>" to node.metadata in its bootstrap'
        )
    return str(admin)


def run(args: argparse.Namespace) -> int:
    view = VIEWS[args.what]
    url = control_plane_url(args.control_plane)
    try:
        proxy = find_proxy(fetch_syncz(url), args.workload)
        admin = admin_address(proxy)
        data = get_json(f"http://{admin}{view.path}", f"the Envoy admin API of {proxy_name(proxy)}")
    except (FetchError, ProxyNotFound) as err:
        print(f"shoal proxy-config: {err}", file=sys.stderr)
        return 1
    if args.output == "json":
        print_json(view.raw(data))
    else:
        render_table(view.columns, view.rows(data))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proxy-config",
        help="show the clusters, listeners, routes or endpoints one Envoy holds",
        description="Find WORKLOAD (a workload name, workload.namespace, or node id) among "
        "the proxies connected to the control plane and print what its Envoy holds, read "
        "from the Envoy admin API.",
    )
    p.add_argument("what", choices=sorted(VIEWS), help="which part of the Envoy config")
    p.add_argument("workload", metavar="WORKLOAD")
    add_control_plane_flag(p)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=run)
