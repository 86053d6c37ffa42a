"""Which metrics a proxy reports, with which labels: the `Telemetry` resources that apply.

Istio's levels (as for PeerAuthentication, generate/peerauth.py): a Telemetry in the root
namespace `istio-system` without a selector is mesh-wide; one without a selector in the
proxy's namespace applies to that namespace; one whose `selector` matches the proxy's labels
(in its namespace) to that workload. One of each level applies (the first by name), and they
are applied in that order, mesh then namespace then workload: a later `disabled` or tag
override for the same metric and side replaces an earlier one (Istio's inheritance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shoal.api import Resource
from shoal.api.meshconfig import ExtensionProvider
from shoal.api.telemetry import TelemetrySpec
from shoal.model import MeshSnapshot, Proxy

ROOT_NAMESPACE = "istio-system"
CLIENT, SERVER = "client", "server"

# Istio's metric enum -> the name shoal's stats loggers give it (under `istio.`)
METRICS = MappingProxyType(
    {
        "REQUEST_COUNT": "requests_total",
        "REQUEST_DURATION": "request_duration_milliseconds",
        "REQUEST_SIZE": "request_bytes",
        "RESPONSE_SIZE": "response_bytes",
        "TCP_OPENED_CONNECTIONS": "tcp_connections_opened_total",
        "TCP_CLOSED_CONNECTIONS": "tcp_connections_closed_total",
        "TCP_SENT_BYTES": "tcp_sent_bytes_total",
        "TCP_RECEIVED_BYTES": "tcp_received_bytes_total",
    }
)
SIDES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "CLIENT_AND_SERVER": (CLIENT, SERVER),
        "CLIENT": (CLIENT,),
        "SERVER": (SERVER,),
    }
)


# the stats the HTTP connection managers' loggers record (the rest are TCP's)
HTTP_STATS = ("requests_total", "request_duration_milliseconds", "request_bytes", "response_bytes")


@dataclass(frozen=True)
class MetricsPolicy:
    """Per (stat name, side): off or on, and label overrides (format string, None: removed)."""

    disabled: frozenset[tuple[str, str]] = frozenset()
    tags: Mapping[tuple[str, str], Mapping[str, str | None]] = field(default_factory=dict)

    def enabled(self, stat: str, side: str) -> bool:
        return (stat, side) not in self.disabled

    def http_metrics_on(self, side: str) -> bool:
        """Whether any HTTP metric is counted on `side`: else nothing reads the peer labels."""
        return any(self.enabled(stat, side) for stat in HTTP_STATS)

    def labels(self, stat: str, side: str, base: Mapping[str, str]) -> dict[str, str]:
        """`base` (label -> format string) with this policy's overrides applied."""
        out = dict(base)
        for name, value in self.tags.get((stat, side), {}).items():
            if value is None:
                out.pop(name, None)
            else:
                out[name] = value
        return out


DEFAULT = MetricsPolicy()


def _spec(res: Resource) -> TelemetrySpec:
    assert isinstance(res.spec, TelemetrySpec)
    return res.spec


def applicable(snapshot: MeshSnapshot, proxy: Proxy) -> list[TelemetrySpec]:
    """The Telemetries that apply, least specific first: mesh, namespace, workload."""
    mesh = namespace = workload = None
    for res in snapshot.telemetries:
        spec = _spec(res)
        labels = spec.selector.match_labels if spec.selector else {}
        ns = res.meta.namespace
        if ns == proxy.namespace and labels:
            if all(proxy.labels.get(k) == v for k, v in labels.items()):
                workload = workload or spec
        elif ns == proxy.namespace:
            namespace = namespace or spec
        elif ns == ROOT_NAMESPACE and not labels:
            mesh = mesh or spec
    return [s for s in (mesh, namespace, workload) if s is not None]


def metrics_policy(snapshot: MeshSnapshot, proxy: Proxy) -> MetricsPolicy:
    if not snapshot.telemetries:
        return DEFAULT
    disabled: set[tuple[str, str]] = set()
    tags: dict[tuple[str, str], dict[str, str | None]] = {}
    for spec in applicable(snapshot, proxy):
        for metrics in spec.metrics:
            for override in metrics.overrides:
                metric = override.match.metric
                stats = list(METRICS.values()) if metric == "ALL_METRICS" else [METRICS.get(metric)]
                for stat in filter(None, stats):
                    for side in SIDES[override.match.mode]:
                        key = (stat, side)
                        if override.disabled is True:
                            disabled.add(key)
                        elif override.disabled is False:
                            disabled.discard(key)
                        for label, tag in override.tag_overrides.items():
                            value = f"%CEL({tag.value})%" if tag.operation == "UPSERT" else None
                            tags.setdefault(key, {})[label] = value
    return MetricsPolicy(frozenset(disabled), tags)


def server_metrics_anywhere(snapshot: MeshSnapshot) -> bool:
    """Whether some proxy may count server-side HTTP metrics, and so label them with its
    callers' `x-shoal-peer-*` headers: yes unless the mesh-wide Telemetry turns every HTTP
    metric off on the server side and no Telemetry turns one back on (`disabled: false`)."""
    mesh = None
    for res in snapshot.telemetries:
        spec = _spec(res)
        if any(o.disabled is False for m in spec.metrics for o in m.overrides):
            return True
        labels = spec.selector.match_labels if spec.selector else {}
        if mesh is None and res.meta.namespace == ROOT_NAMESPACE and not labels:
            mesh = spec
    if mesh is None:
        return True
    off: set[str] = set()
    for metrics in mesh.metrics:
        for override in metrics.overrides:
            if override.disabled is True and SERVER in SIDES[override.match.mode]:
                metric = override.match.metric
                if metric == "ALL_METRICS":
                    off.update(METRICS.values())
                elif metric in METRICS:
                    off.add(METRICS[metric])
    return not off.issuperset(HTTP_STATS)


@dataclass(frozen=True)
class AccessLogPolicy:
    """Where a proxy writes access logs, per side ("" : no file), and how; `otel`: the
    MeshConfig `envoyOtelAls` providers each side sends log records to."""

    client: str = ""
    server: str = ""
    encoding: str = "TEXT"
    format: str = ""
    client_otel: tuple[ExtensionProvider, ...] = ()
    server_otel: tuple[ExtensionProvider, ...] = ()
    # a CEL expression: only requests it is true for are logged ("": all)
    client_filter: str = ""
    server_filter: str = ""

    def path(self, side: str) -> str:
        return self.client if side == CLIENT else self.server

    def otel(self, side: str) -> tuple[ExtensionProvider, ...]:
        return self.client_otel if side == CLIENT else self.server_otel

    def filter(self, side: str) -> str:
        return self.client_filter if side == CLIENT else self.server_filter


def access_log_policy(snapshot: MeshSnapshot, proxy: Proxy) -> AccessLogPolicy:
    """MeshConfig `accessLogFile` turns the `envoy` (file) access log on everywhere; Telemetry
    `accessLogging` sets the providers (default `envoy`) or turns logging off per level and
    side, a later level replacing what an earlier one said."""
    mesh = snapshot.mesh_config
    default: tuple[str, ...] = ("envoy",) if mesh.access_log_file else ()
    names = {CLIENT: default, SERVER: default}
    filters = {CLIENT: "", SERVER: ""}
    for spec in applicable(snapshot, proxy) if snapshot.telemetries else ():
        for logging in spec.access_logging:
            if logging.disabled is None and not logging.providers and logging.filter is None:
                continue
            listed = tuple(p.name for p in logging.providers)
            for side in SIDES[logging.match.mode]:
                if logging.disabled:  # the providers listed, or all
                    names[side] = tuple(n for n in names[side] if listed and n not in listed)
                else:
                    names[side] = listed or names[side] or ("envoy",)
                    filters[side] = logging.filter.expression if logging.filter else ""
    path = mesh.access_log_file or "/dev/stdout"

    def otel(side: str) -> tuple[ExtensionProvider, ...]:
        found = (mesh.provider(n) for n in names[side] if n != "envoy")
        return tuple(p for p in found if p is not None and p.envoy_otel_als is not None)

    return AccessLogPolicy(
        client=path if "envoy" in names[CLIENT] else "",
        server=path if "envoy" in names[SERVER] else "",
        encoding=mesh.access_log_encoding,
        format=mesh.access_log_format,
        client_otel=otel(CLIENT),
        server_otel=otel(SERVER),
        client_filter=filters[CLIENT],
        server_filter=filters[SERVER],
    )
