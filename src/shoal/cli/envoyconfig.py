"""Readable rows from an Envoy's admin API output, for `shoal proxy-config`.

Pure functions over the JSON of `GET /config_dump` and `GET /clusters?format=json`: no I/O,
so they are tested on a dump captured from a real Envoy. Envoy's JSON is proto3 JSON, in
which fields at their default value are left out (a cluster of type STATIC has no `type`),
so every lookup has a default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Json = Mapping[str, Any]

_HCM = "envoy.filters.network.http_connection_manager"
_TCP_PROXY = "envoy.filters.network.tcp_proxy"


@dataclass(frozen=True)
class ClusterName:
    """An Istio cluster name `DIRECTION|PORT|SUBSET|HOST`, split into its parts."""

    direction: str  # outbound / inbound
    port: int
    subset: str
    host: str


def parse_cluster_name(name: str) -> ClusterName | None:
    """Split an Istio-style cluster name; None for names of another shape (`xds-grpc`)."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in ("outbound", "inbound") or not parts[1].isdigit():
        return None
    return ClusterName(parts[0], int(parts[1]), parts[2], parts[3])


def section(dump: Json, kind: str) -> Json:
    """The part of a config dump of `@type` ...`kind` (e.g. "ClustersConfigDump"); {} if
    Envoy left it out."""
    for config in dump.get("configs", []):
        if str(config.get("@type", "")).endswith("." + kind):
            return dict(config)
    return {}


def _or_dash(value: object) -> str:
    # An empty cell would shift columns for awk and cut; "-" keeps every row the same width.
    text = str(value) if value is not None else ""
    return text or "-"


# -- clusters ---------------------------------------------------------------------------------


def _clusters(dump: Json) -> Iterator[tuple[Json, str]]:
    """(cluster, state) for every cluster in the dump; state is "" or "warming"."""
    part = section(dump, "ClustersConfigDump")
    for entry in part.get("static_clusters", []):
        yield entry.get("cluster", {}), ""
    for entry in part.get("dynamic_active_clusters", []):
        yield entry.get("cluster", {}), ""
    for entry in part.get("dynamic_warming_clusters", []):
        yield entry.get("cluster", {}), "warming"


def cluster_type(cluster: Json) -> str:
    custom = cluster.get("cluster_type")
    if custom:
        return str(custom.get("name", "CUSTOM"))
    return str(cluster.get("type", "STATIC"))  # STATIC is the proto default, so omitted


CLUSTER_COLUMNS = ("SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE")


def cluster_rows(dump: Json) -> list[list[str]]:
    rows: list[tuple[tuple[str, int, str, str], list[str]]] = []
    for cluster, state in _clusters(dump):
        name = str(cluster.get("name", ""))
        kind = cluster_type(cluster) + (f" ({state})" if state else "")
        parsed = parse_cluster_name(name)
        if parsed is None:
            rows.append(((name, 0, "", ""), [name, "-", "-", "-", kind]))
            continue
        key = (parsed.host, parsed.port, parsed.subset, parsed.direction)
        row = [_or_dash(parsed.host), str(parsed.port), _or_dash(parsed.subset), parsed.direction]
        rows.append((key, [*row, kind]))
    return [row for _, row in sorted(rows)]


# -- listeners --------------------------------------------------------------------------------


def _listeners(dump: Json) -> Iterator[tuple[Json, str]]:
    part = section(dump, "ListenersConfigDump")
    for entry in part.get("static_listeners", []):
        yield entry.get("listener", {}), ""
    for entry in part.get("dynamic_listeners", []):
        for state_key, state in (("active_state", ""), ("warming_state", "warming")):
            if state_key in entry:
                yield entry[state_key].get("listener", {}), state
                break


def _address(address: Json) -> tuple[str, str]:
    if "pipe" in address:
        return str(address["pipe"].get("path", "")), "-"
    sock = address.get("socket_address", {})
    return _or_dash(sock.get("address")), str(sock.get("port_value", 0))


def _filters(listener: Json) -> Iterator[Json]:
    for chain in listener.get("filter_chains", []):
        yield from chain.get("filters", [])
    default = listener.get("default_filter_chain")
    if default:
        yield from default.get("filters", [])


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


LISTENER_COLUMNS = ("NAME", "ADDRESS", "PORT", "TYPE", "DESTINATION")


def listener_rows(dump: Json) -> list[list[str]]:
    rows = []
    for listener, state in _listeners(dump):
        types: list[str] = []
        destinations: list[str] = []
        for f in _filters(listener):
            config = f.get("typed_config", {})
            if f.get("name") == _HCM:
                types.append("HTTP")
                if "rds" in config:
                    destinations.append(f"Route: {config['rds'].get('route_config_name', '')}")
                else:
                    inline = config.get("route_config", {}).get("name", "")
                    destinations.append(f"Route: {inline} (inline)")
            elif f.get("name") == _TCP_PROXY:
                types.append("TCP")
                destinations.append(f"Cluster: {config.get('cluster', '')}")
        address, port = _address(listener.get("address", {}))
        kind = "/".join(_unique(types)) or "-"
        rows.append(
            [
                str(listener.get("name", "")),
                address,
                port,
                kind + (f" ({state})" if state else ""),
                ", ".join(_unique(destinations)) or "-",
            ]
        )
    return sorted(rows)


# -- routes -----------------------------------------------------------------------------------


def summarize_domains(domains: Sequence[str]) -> str:
    """Domains without the `name:PORT` twins of `name`, shortened to the longest and the
    shortest when there are many (istioctl does the same: the full list is in -o json)."""
    names = [
        d
        for d in domains
        if not (":" in d and d.rsplit(":", 1)[1].isdigit() and d.rsplit(":", 1)[0] in domains)
    ]
    if len(names) <= 2:
        return ", ".join(names) or "-"
    longest, shortest = max(names, key=len), min(names, key=len)
    return f"{longest}, {shortest} +{len(names) - 2} more"


def _string_match(name: str, m: Json, invert: bool) -> str:
    neg = "!" if invert else ""
    if "exact" in m:
        return f"{neg}{name}={m['exact']}"
    if "prefix" in m:
        return f"{neg}{name}^={m['prefix']}"
    if "safe_regex" in m:
        return f"{neg}{name}~={m['safe_regex'].get('regex', '')}"
    return f"{neg}{name}"  # present_match


def describe_match(match: Json) -> str:
    """A route match in one short line: `/api/*`, `/exact`, `regex:/re/[0-9]+`, then any
    header (`end-user=jason`) and query (`?v=2`) conditions, joined by ` && `."""
    if "path" in match:
        parts = [str(match["path"])]
    elif "safe_regex" in match:
        parts = [f"regex:{match['safe_regex'].get('regex', '')}"]
    elif "path_separated_prefix" in match:
        parts = [f"{match['path_separated_prefix']}/*"]
    else:
        parts = [f"{match.get('prefix', '/')}*"]
    for h in match.get("headers", []):
        inner = h.get("string_match", {})
        parts.append(_string_match(str(h.get("name", "")), inner, bool(h.get("invert_match"))))
    for q in match.get("query_parameters", []):
        parts.append("?" + _string_match(str(q.get("name", "")), q.get("string_match", {}), False))
    return " && ".join(parts)


def _weighted(cluster: Json) -> str:
    weight = cluster.get("weight", 0)
    # shoal gives weight 0 only to a destination without endpoints (generate/emptydest.py)
    held = " (no endpoints yet)" if not weight else ""
    return f"{cluster.get('name', '')} {weight}%{held}"


def describe_action(route: Json) -> str:
    """Where a route sends traffic: a cluster, weighted clusters, or what it answers."""
    action = route.get("route")
    if action is not None:
        if "cluster" in action:
            return str(action["cluster"])
        if "weighted_clusters" in action:
            clusters = action["weighted_clusters"].get("clusters", [])
            return ", ".join(_weighted(c) for c in clusters)
        if "cluster_header" in action:
            return f"cluster from header {action['cluster_header']}"
    if "redirect" in route:
        return "redirect"
    if "direct_response" in route:
        return f"direct response {route['direct_response'].get('status', '')}"
    return "-"


ROUTE_COLUMNS = ("ROUTE NAME", "DOMAINS", "MATCH", "HTTP ROUTE", "DESTINATION")


def route_rows(dump: Json) -> list[list[str]]:
    part = section(dump, "RoutesConfigDump")
    configs = [*part.get("static_route_configs", []), *part.get("dynamic_route_configs", [])]
    rows = []
    for entry in configs:
        config = entry.get("route_config", {})
        for vhost in config.get("virtual_hosts", []):
            domains = summarize_domains(vhost.get("domains", []))
            # Route order is match order, so it is kept as Envoy holds it.
            for route in vhost.get("routes", []):
                rows.append(
                    [
                        str(config.get("name", "")),
                        domains,
                        describe_match(route.get("match", {})),
                        _or_dash(route.get("name")),
                        describe_action(route),
                    ]
                )
    return rows


# -- endpoints (from GET /clusters?format=json) ------------------------------------------------

_FAILED = ("failed_active_health_check", "failed_outlier_check", "failed_active_degraded_check")


def endpoint_status(health: Json) -> str:
    """HEALTHY or UNHEALTHY (or DRAINING, ...) as Envoy would load-balance to the host."""
    if any(health.get(flag) for flag in _FAILED):
        return "UNHEALTHY"
    eds = str(health.get("eds_health_status", "HEALTHY"))
    # UNKNOWN (the proto default) is load-balanced to like HEALTHY.
    return "HEALTHY" if eds == "UNKNOWN" else eds


ENDPOINT_COLUMNS = ("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER")


def endpoint_rows(clusters: Json) -> list[list[str]]:
    rows = []
    for status in clusters.get("cluster_statuses", []):
        for host in status.get("host_statuses", []):
            address, port = _address(host.get("address", {}))
            endpoint = address if port == "-" else f"{address}:{port}"
            health = host.get("health_status", {})
            rows.append(
                [
                    endpoint,
                    endpoint_status(health),
                    "FAILED" if health.get("failed_outlier_check") else "OK",
                    str(status.get("name", "")),
                ]
            )
    return sorted(rows, key=lambda r: (r[3], r[0]))
