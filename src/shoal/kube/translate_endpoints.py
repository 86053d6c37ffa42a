"""EndpointSlices (discovery.k8s.io/v1) -> mesh `Endpoint`s, with readiness as Istio reads it.

An endpoint is healthy when its `ready` condition is true or unset. Not ready but not
terminating: kept, unhealthy (Envoy is told, and sends it nothing). Not ready and terminating:
left out, as Istio never sends terminating endpoints. A Service with `publishNotReadyAddresses`
gets every address marked ready by Kubernetes itself, so nothing here needs to know.

Each endpoint takes its pod's labels and service account (through `targetRef`), and the port
of its sidecar's inbound listener when the sidecar runs without capture; an endpoint
whose pod the caller does not know yet is left out and its pod reported in `missing`, so the
caller can translate the slice again when the pod arrives (Istio does the same). Endpoints
with no pod behind them (hand-written slices, VMs) keep empty labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shoal.kube.objects import KubeObject, items, labels_of, mapping, namespace_of, text
from shoal.kube.translate_pod import Workload, locality
from shoal.model.snapshot import Endpoint

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PodKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class SliceEndpoints:
    """The endpoints one slice contributes, and the pods it named that were not known."""

    service: str  # the Service's name (label kubernetes.io/service-name); "" if none
    namespace: str
    endpoints: tuple[Endpoint, ...]
    missing: tuple[PodKey, ...] = ()


def slice_service(endpoint_slice: KubeObject) -> tuple[str, str]:
    """(namespace, Service name) a slice belongs to; the name is "" for unowned slices."""
    return namespace_of(endpoint_slice), labels_of(endpoint_slice).get(SERVICE_NAME_LABEL, "")


def health(conditions: Mapping[str, object]) -> str | None:
    """ "HEALTHY", "UNHEALTHY", or None for an endpoint to leave out (terminating)."""
    ready = conditions.get("ready")
    if ready is None or ready is True:
        return "HEALTHY"
    if conditions.get("terminating") is True:
        return None
    return "UNHEALTHY"


def slice_endpoints(
    endpoint_slice: KubeObject,
    pods: Mapping[PodKey, Workload],
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> SliceEndpoints:
    """Translate one EndpointSlice; `pods` by (namespace, name), node labels by node name."""
    namespace, service = slice_service(endpoint_slice)
    if text(endpoint_slice, "addressType") == "FQDN":
        # unsupported by Istio too: no IP to send to
        return SliceEndpoints(service, namespace, ())
    ports: dict[str, int] = {}
    for raw in items(endpoint_slice, "ports"):
        number = raw.get("port") if isinstance(raw, dict) else None
        if isinstance(number, int):
            ports[text(raw, "name")] = number
    port_map = MappingProxyType(dict(sorted(ports.items())))
    out: list[Endpoint] = []
    missing: list[PodKey] = []
    for raw in items(endpoint_slice, "endpoints"):
        status = health(mapping(raw, "conditions"))
        if status is None:
            continue
        ref = mapping(raw, "targetRef")
        pod: Workload | None = None
        if text(ref, "kind") == "Pod":
            key = (text(ref, "namespace") or namespace, text(ref, "name"))
            pod = pods.get(key)
            if pod is None:
                missing.append(key)
                continue
        node = text(raw, "nodeName") or (pod.node_name if pod else "")
        labels = pod.labels if pod is not None else MappingProxyType({})
        where = locality(labels, text(raw, "zone"), (node_labels or {}).get(node))
        # a sidecar without capture takes every service port on its inbound port (inject.py)
        ep_ports = (
            MappingProxyType(dict.fromkeys(port_map, pod.inbound_port))
            if pod is not None and pod.inbound_port is not None
            else port_map
        )
        for address in items(raw, "addresses"):
            if not isinstance(address, str) or not address:
                continue
            out.append(
                Endpoint(
                    address=address,
                    labels=labels,
                    ports=ep_ports,
                    service_account=pod.service_account if pod is not None else "",
                    healthy=status == "HEALTHY",
                    tls_mode=pod.tls_mode if pod is not None else "disabled",
                    locality=where,
                )
            )
    return SliceEndpoints(service, namespace, tuple(out), tuple(missing))


def merge_slices(slices: Iterable[SliceEndpoints]) -> tuple[Endpoint, ...]:
    """The endpoints of one Service from all its slices. An address in two slices (an
    endpoint moving between them) is kept once: a ready copy wins over a not-ready one."""
    by_key: dict[tuple[str, tuple[tuple[str, int], ...]], Endpoint] = {}
    for part in slices:
        for ep in part.endpoints:
            key = (ep.address, tuple(sorted(ep.ports.items())))
            seen = by_key.get(key)
            if seen is None or (ep.healthy and not seen.healthy):
                by_key[key] = ep
    return tuple(by_key[k] for k in sorted(by_key))
