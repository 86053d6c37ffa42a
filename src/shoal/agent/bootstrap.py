"""The Envoy bootstrap a sidecar starts from: its identity, its admin port and where ADS is.

Everything else arrives over xDS. The node id and metadata follow DESIGN.md, so the control
plane can tell who is asking; the ADS stream reconnects within half a second of a
control-plane restart (Envoy's default backoff would grow to 30 s). Its runtime raises
RE2's program-size limit as Istio does, to the limit shoal validates regexes against
(api/re2.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from shoal.agent.metricsport import admin_cluster, metrics_listener
from shoal.common.canonical import tracing_service
from shoal.common.re2limits import REGEX_PROGRAM_SIZE_LIMIT, RUNTIME_KEY

ApiType = Literal["GRPC", "DELTA_GRPC"]


# How fast the ADS stream reconnects. Envoy reads this from `envoy_grpc.retry_policy` only
# (the GrpcService-level `retry_policy` is for other streams and ignored by xDS); without it
# the backoff starts at 0.5 s and doubles to 30 s. Each wait is drawn at random below the
# current interval, so with a 0.5 s cap a restarted control plane is found within 0.5 s.
def xds_retry() -> dict[str, object]:
    return {"retry_policy": {"retry_back_off": {"base_interval": "0.1s", "max_interval": "0.5s"}}}


@dataclass(frozen=True)
class SidecarIdentity:
    """Who the sidecar is and where it listens."""

    name: str  # the replica ("pod") name, e.g. reviews-v1-0
    namespace: str = "default"
    workload: str = ""  # e.g. reviews-v1; replicas of one workload share it
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    ip: str = "127.0.0.1"
    outbound_port: int | None = None
    inbound_port: int | None = None
    app_port: int | None = None
    # "sidecar", or "router" for a gateway (listeners come from Gateway resources)
    type: str = "sidecar"
    # Istio-named metrics on <metrics_host>:<port>/stats/prometheus (None: not served)
    prometheus_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # the service host the workload serves (reported as `destination_service`)
    service_host: str = ""
    # "NONE": loopback ports; "REDIRECT": iptables captures the pod's traffic into 15001/15006
    interception: str = "NONE"
    # the WorkloadGroup this workload joins as a WorkloadEntry (Istio's auto-registration)
    auto_register_group: str = ""
    # a node proxy (type "node"): its pods as node metadata NODE_PODS, a JSON list
    # (model/nodepods.py says what each entry holds)
    node_pods: str = ""

    @property
    def node_id(self) -> str:
        ns = self.namespace
        return f"{self.type}~{self.ip}~{self.name}.{ns}~{ns}.svc.cluster.local"


def _metadata(ident: SidecarIdentity, admin_port: int) -> dict[str, object]:
    meta: dict[str, object] = {
        "NAMESPACE": ident.namespace,
        "LABELS": dict(ident.labels),
        "SERVICE_ACCOUNT": ident.service_account,
        "INSTANCE_IPS": ident.ip,
        "WORKLOAD_NAME": ident.workload or ident.name,
        "INTERCEPTION_MODE": ident.interception,
        "ADMIN_PORT": str(admin_port),
    }
    for key, value in (
        ("OUTBOUND_PORT", ident.outbound_port),
        ("INBOUND_PORT", ident.inbound_port),
        ("APP_PORT", ident.app_port),
        ("PROMETHEUS_PORT", ident.prometheus_port),
    ):
        if value is not None:
            meta[key] = str(value)
    if ident.service_host:
        meta["SERVICE_HOST"] = ident.service_host
    if ident.auto_register_group:
        meta["AUTO_REGISTER_GROUP"] = ident.auto_register_group
    if ident.node_pods:
        meta["NODE_PODS"] = ident.node_pods
    return meta


def layered_runtime() -> dict[str, object]:
    """The runtime every shoal bootstrap sets: RE2's limit raised, runtime changes by admin."""
    return {
        "layers": [
            {"name": "shoal", "static_layer": {RUNTIME_KEY: REGEX_PROGRAM_SIZE_LIMIT}},
            {"name": "admin", "admin_layer": {}},
        ]
    }


def sidecar_bootstrap(
    ident: SidecarIdentity,
    *,
    xds_host: str,
    xds_port: int,
    admin_port: int,
    api_type: ApiType = "GRPC",
    more_xds: Sequence[tuple[str, int]] = (),
) -> dict[str, object]:
    """The bootstrap as a JSON-ready dict (Envoy reads JSON and YAML alike).

    `more_xds`: other control-plane replicas. They are further endpoints of the one `xds-grpc`
    cluster, so when the replica a proxy's ADS stream runs to goes away, the stream's retry
    connects to another endpoint of the same cluster and resumes there."""
    xds_endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": h, "port_value": p}}}}
        for h, p in ((xds_host, xds_port), *more_xds)
    ]
    ads = {"ads": {}, "resource_api_version": "V3"}
    out: dict[str, Any] = {
        "node": {
            "id": ident.node_id,
            # Istio's trace service name: Envoy's Zipkin tracer reports the node's cluster
            "cluster": tracing_service(ident.labels, ident.workload or ident.name, ident.namespace),
            "metadata": _metadata(ident, admin_port),
        },
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc", **xds_retry()}}],
            },
            "cds_config": ads,
            "lds_config": ads,
        },
        "layered_runtime": layered_runtime(),
        # an explicit connection limit (Envoy warns at start-up without one)
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                        "downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 50000,
                    },
                }
            ]
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds-grpc",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/"
                            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {
                                "http2_protocol_options": {
                                    "connection_keepalive": {"interval": "30s", "timeout": "5s"}
                                }
                            },
                        }
                    },
                    "load_assignment": {
                        "cluster_name": "xds-grpc",
                        "endpoints": [{"lb_endpoints": xds_endpoints}],
                    },
                }
            ]
        },
    }
    if ident.prometheus_port is not None:
        # Istio's 15090: a static listener, so metrics answer before any xDS arrives
        static = out["static_resources"]
        static["listeners"] = [metrics_listener(ident.metrics_host, ident.prometheus_port)]
        static["clusters"].append(admin_cluster(admin_port))
    return out
