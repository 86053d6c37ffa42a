"""Who is asking: a `Proxy` parsed from an Envoy node id and node metadata.

The node id follows Istio's shape, ``<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local``,
and the metadata carries the keys listed in DESIGN.md. Envoy sends metadata as a protobuf
Struct, so every scalar may arrive as a string or a number; parsing accepts both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from shoal.model.nodepods import NodePod

ProxyType = Literal["sidecar", "router", "node"]
InterceptionMode = Literal["REDIRECT", "NONE"]

_PROXY_TYPES: tuple[ProxyType, ...] = ("sidecar", "router", "node")


class ProxyError(ValueError):
    """The node id or metadata does not describe a proxy shoal can configure."""


@dataclass(frozen=True)
class Proxy:
    """A connected Envoy, as far as config generation needs to know it."""

    node_id: str
    type: ProxyType
    ip: str
    workload: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    instance_ips: tuple[str, ...] = ()
    workload_name: str = ""
    interception_mode: InterceptionMode = "REDIRECT"
    outbound_port: int | None = None
    inbound_port: int | None = None
    # shoal extension: where the local application listens, so the inbound listener can
    # forward to it in INTERCEPTION_MODE NONE (Istio learns this from the pod spec).
    app_port: int | None = None
    # shoal extension: the Envoy admin port on loopback, so `shoal proxy-config` can find it
    admin_port: int | None = None
    # node metadata SECURE "true": the proxy has SDS (cluster `sds-grpc`) with the workload's
    # certificate (`default`) and the mesh trust bundle (`ROOTCA`), so it can speak mTLS
    secure: bool = False
    # shoal extension: where the proxy serves its Istio-named metrics (Istio's 15090
    # `/stats/prometheus`; agent/metricsport.py), and the service host its workload serves
    # (what it reports as `destination_service` for requests it receives)
    prometheus_port: int | None = None
    service_host: str = ""
    # node metadata GENERATOR "grpc" (Istio's proxyless marker): not an Envoy but a gRPC
    # library's own xDS client (grpcio's `xds:///` targets), which gets API listeners named
    # by the target it dials instead of sidecar listeners (generate/proxyless.py)
    proxyless: bool = False
    # a node proxy (type `node`): the pods of its host it serves (metadata NODE_PODS,
    # model/nodepods.py), each with its own listeners inside its network namespace
    node_pods: tuple[NodePod, ...] = ()
    # node metadata AUTO_REGISTER_GROUP (Istio's auto-registration): the WorkloadGroup of its
    # namespace this proxy registers itself into as a WorkloadEntry (controlplane/autoregister)
    auto_register_group: str = ""

    @property
    def labels_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))


def _port(metadata: Mapping[str, object], key: str) -> int | None:
    raw = metadata.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise ProxyError(f"node metadata {key}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise ProxyError(f"node metadata {key}={value} is outside 1..65535")
    return value


def _labels(raw: object) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        raise ProxyError(f"node metadata LABELS must be a map, got {type(raw).__name__}")
    return {str(k): str(v) for k, v in raw.items()}


def parse_proxy(node_id: str, metadata: Mapping[str, object]) -> Proxy:
    """Build a `Proxy` from what Envoy sent as ``node.id`` and ``node.metadata``."""
    parts = node_id.split("~")
    if len(parts) != 4:
        raise ProxyError(
            f"node id {node_id!r} must look like TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local"
        )
    kind, ip, pod, domain = parts
    if kind not in _PROXY_TYPES:
        raise ProxyError(f"node id type {kind!r} must be one of {', '.join(_PROXY_TYPES)}")
    proxy_type: ProxyType = (
        "sidecar" if kind == "sidecar" else "router" if kind == "router" else "node"
    )
    namespace = str(metadata.get("NAMESPACE") or "")
    if not namespace:
        namespace = pod.rsplit(".", 1)[1] if "." in pod else domain.split(".", 1)[0] or "default"
    mode_raw = str(metadata.get("INTERCEPTION_MODE") or "REDIRECT").upper()
    if mode_raw not in ("REDIRECT", "NONE"):
        raise ProxyError(f"node metadata INTERCEPTION_MODE={mode_raw!r} must be REDIRECT or NONE")
    mode: InterceptionMode = "NONE" if mode_raw == "NONE" else "REDIRECT"
    ips_raw = str(metadata.get("INSTANCE_IPS") or ip)
    outbound = _port(metadata, "OUTBOUND_PORT")
    proxyless = str(metadata.get("GENERATOR") or "").lower() == "grpc"
    if mode == "NONE" and outbound is None and proxy_type == "sidecar" and not proxyless:
        raise ProxyError("INTERCEPTION_MODE NONE needs node metadata OUTBOUND_PORT")
    return Proxy(
        node_id=node_id,
        type=proxy_type,
        ip=ip,
        workload=pod,
        namespace=namespace,
        labels=_labels(metadata.get("LABELS")),
        service_account=str(metadata.get("SERVICE_ACCOUNT") or "default"),
        instance_ips=tuple(x.strip() for x in ips_raw.split(",") if x.strip()),
        workload_name=str(metadata.get("WORKLOAD_NAME") or pod.split(".", 1)[0]),
        interception_mode=mode,
        outbound_port=outbound,
        inbound_port=_port(metadata, "INBOUND_PORT"),
        app_port=_port(metadata, "APP_PORT"),
        admin_port=_port(metadata, "ADMIN_PORT"),
        secure=str(metadata.get("SECURE") or "").lower() == "true",
        prometheus_port=_port(metadata, "PROMETHEUS_PORT"),
        service_host=str(metadata.get("SERVICE_HOST") or ""),
        proxyless=proxyless,
        node_pods=_node_pods(metadata) if proxy_type == "node" else (),
        auto_register_group=str(metadata.get("AUTO_REGISTER_GROUP") or ""),
    )


def _node_pods(metadata: Mapping[str, object]) -> tuple[NodePod, ...]:
    from shoal.model.nodepods import node_pods  # noqa: PLC0415  (it imports this module)

    return node_pods(metadata)
