"""Kubernetes Service -> mesh `Service`: Kubernetes naming, ports by name, Istio's protocol rules.

Pure: a Service object in its JSON form in, a `shoal.model.Service` out (endpoints come from
EndpointSlices, translate_endpoints.py). Used by the Kubernetes source. Host names and port
protocols follow Istio's rules in api/kubeprotocol.py, which file mode shares: `v1 Service`
objects in a config directory become mesh services the same way (model/fileservices.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from shoal.api.hosts import CLUSTER_DOMAIN
from shoal.api.kubeprotocol import (
    EXPORT_TO_ANNOTATION,
    UNRECOGNISED_PROTOCOL,
    port_protocol,
    service_hostname,
)
from shoal.kube.objects import KubeObject, annotations_of, items, name_of, namespace_of, text
from shoal.kube.translate_endpoints import PodKey, merge_slices, slice_endpoints
from shoal.kube.translate_pod import Workload
from shoal.model.snapshot import Endpoint, Port, Service

__all__ = [
    "EXPORT_TO_ANNOTATION",
    "UNRECOGNISED_PROTOCOL",
    "mesh_service",
    "port_protocol",
    "service_from_slices",
    "service_hostname",
    "service_ports",
]


def service_ports(service: KubeObject) -> tuple[Port, ...]:
    """The ports of a Service, each with its protocol and numeric target port (a named
    `targetPort` is resolved per endpoint, from the EndpointSlice, so it reads as None)."""
    out = []
    for raw in items(service, "spec", "ports"):
        number = raw.get("port") if isinstance(raw, dict) else None
        if not isinstance(number, int):
            continue
        kube_protocol = text(raw, "protocol", default="TCP")
        if kube_protocol.upper() == "SCTP":
            continue  # Envoy cannot proxy SCTP
        name = text(raw, "name")
        app = raw.get("appProtocol")
        target = raw.get("targetPort")
        out.append(
            Port(
                number=number,
                name=name,
                protocol=port_protocol(name, kube_protocol, app if isinstance(app, str) else None),
                target_port=target if isinstance(target, int) and target != number else None,
            )
        )
    return tuple(out)


def _export_to(service: KubeObject) -> tuple[str, ...]:
    # Istio reads a Service's visibility from this annotation, comma-separated
    value = annotations_of(service).get(EXPORT_TO_ANNOTATION, "")
    return tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))


def _cluster_ips(service: KubeObject) -> tuple[str, ...]:
    ips = [ip for ip in items(service, "spec", "clusterIPs") if isinstance(ip, str)]
    if not ips and text(service, "spec", "clusterIP"):
        ips = [text(service, "spec", "clusterIP")]
    return tuple(ip for ip in ips if ip and ip != "None")


def is_headless(service: KubeObject) -> bool:
    return text(service, "spec", "clusterIP") == "None"


def mesh_service(
    service: KubeObject,
    endpoints: Sequence[Endpoint] = (),
    *,
    domain: str = CLUSTER_DOMAIN,
) -> Service:
    """The mesh service for a Kubernetes Service, with `endpoints` (from its EndpointSlices).

    ClusterIP Services are load-balanced by the proxy over their endpoints (STATIC, EDS);
    headless ones (`clusterIP: None`) resolve NONE: with endpoints they are load-balanced
    the same way, without any the caller's original destination is used. ExternalName
    Services are external DNS names (DNS resolution of `externalName`, MESH_EXTERNAL), as
    Istio makes them.
    """
    name, namespace = name_of(service), namespace_of(service)
    ports = service_ports(service)
    host = service_hostname(name, namespace, domain)
    if text(service, "spec", "type") == "ExternalName":
        external = text(service, "spec", "externalName").rstrip(".")
        return Service(
            hostname=host,
            namespace=namespace,
            ports=ports,
            resolution="DNS",
            location="MESH_EXTERNAL",
            endpoints=(Endpoint(address=external),) if external else (),
            export_to=_export_to(service),
        )
    return Service(
        hostname=host,
        namespace=namespace,
        ports=ports,
        addresses=_cluster_ips(service),
        resolution="NONE" if is_headless(service) else "STATIC",
        location="MESH_INTERNAL",
        endpoints=tuple(sorted(endpoints, key=_endpoint_order)),
        export_to=_export_to(service),
    )


def _endpoint_order(e: Endpoint) -> tuple[str, list[tuple[str, int]]]:
    # the same order model.build gives ServiceEntry endpoints: equal input, equal output
    return (e.address, sorted(e.ports.items()))


def service_from_slices(
    service: KubeObject,
    slices: Iterable[KubeObject],
    pods: Mapping[PodKey, Workload],
    *,
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
    domain: str = CLUSTER_DOMAIN,
) -> Service:
    """`mesh_service` with the endpoints of the Service's EndpointSlices (those labelled
    `kubernetes.io/service-name: <name>` in its namespace; others are ignored)."""
    key = (namespace_of(service), name_of(service))
    parts = [slice_endpoints(s, pods, node_labels) for s in slices]
    endpoints = merge_slices(p for p in parts if (p.namespace, p.service) == key)
    return mesh_service(service, endpoints, domain=domain)
