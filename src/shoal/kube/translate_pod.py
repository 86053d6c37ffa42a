"""Kubernetes Pod -> `Workload`: what the mesh needs to know of one pod.

Its labels (subsets and workload selectors match them), service account (its identity), IPs
(EndpointSlices and proxies name pods by IP), node, readiness and whether it carries a shoal
sidecar (`security.istio.io/tlsMode: istio`, set by the injector, decides automatic mTLS) and
on which port that sidecar takes the pod's traffic (interception mode NONE, inject.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shoal.kube.objects import (
    KubeObject,
    annotations_of,
    flag,
    items,
    labels_of,
    mapping,
    name_of,
    namespace_of,
    text,
)

TLS_MODE_LABEL = "security.istio.io/tlsMode"
# set by the injector (inject.py): the sidecar takes the pod's service traffic on this port
INTERCEPTION_ANNOTATION = "sidecar.istio.io/interceptionMode"
INBOUND_PORT_ANNOTATION = "shoal.dev/inbound-port"
# Istio's pod label that overrides topology: "region.zone.subzone"
LOCALITY_LABEL = "istio-locality"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"


def _frozen(labels: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(labels.items())))


@dataclass(frozen=True)
class Workload:
    """One pod, as the mesh sees it."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    ip: str = ""
    ips: tuple[str, ...] = ()
    node_name: str = ""
    phase: str = ""
    ready: bool = False
    terminating: bool = False
    host_network: bool = False
    # interception mode NONE: every service port of this pod enters through the sidecar here
    inbound_port: int | None = None

    @property
    def tls_mode(self) -> str:
        return self.labels.get(TLS_MODE_LABEL, "disabled")

    @property
    def endpoint_inputs(self) -> tuple[object, ...]:
        """Everything EndpointSlice translation reads from the pod: when this is unchanged,
        the pod's endpoints are too."""
        return (self.labels, self.service_account, self.node_name, self.tls_mode, self.inbound_port)


def workload(pod: KubeObject) -> Workload:
    """The `Workload` of a Pod object."""
    ip = text(pod, "status", "podIP")
    ips = tuple(t for t in (text(p, "ip") for p in items(pod, "status", "podIPs")) if t) or (
        (ip,) if ip else ()
    )
    annotations = annotations_of(pod)
    inbound = annotations.get(INBOUND_PORT_ANNOTATION, "")
    ready = any(
        text(c, "type") == "Ready" and text(c, "status") == "True"
        for c in items(pod, "status", "conditions")
    )
    return Workload(
        name=name_of(pod),
        namespace=namespace_of(pod),
        labels=_frozen(labels_of(pod)),
        # serviceAccount is the deprecated spelling, still set by the API server
        service_account=text(pod, "spec", "serviceAccountName")
        or text(pod, "spec", "serviceAccount")
        or "default",
        ip=ip or (ips[0] if ips else ""),
        ips=ips,
        node_name=text(pod, "spec", "nodeName"),
        phase=text(pod, "status", "phase"),
        ready=ready,
        terminating=bool(mapping(pod, "metadata").get("deletionTimestamp")),
        host_network=flag(pod, "spec", "hostNetwork") is True,
        inbound_port=int(inbound)
        if inbound.isdigit() and annotations.get(INTERCEPTION_ANNOTATION) == "NONE"
        else None,
    )


def locality(
    pod_labels: Mapping[str, str],
    zone: str = "",
    node_labels: Mapping[str, str] | None = None,
) -> str:
    """Istio's locality "region/zone/subzone": the pod's `istio-locality` label if set, else
    the node's topology labels, else the EndpointSlice's `zone`; "" when nothing is known."""
    override = pod_labels.get(LOCALITY_LABEL, "")
    if override:
        return override.replace(".", "/")
    node = node_labels or {}
    region = node.get(REGION_LABEL, "")
    zone = node.get(ZONE_LABEL, "") or zone
    subzone = node.get(SUBZONE_LABEL, "")
    if not (region or zone or subzone):
        return ""
    return "/".join((region, zone, subzone)).rstrip("/")
