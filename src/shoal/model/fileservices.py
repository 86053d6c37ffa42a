"""Kubernetes `Service` objects of a config directory -> mesh `Service`s (file mode), and
`kubernetes.io/tls` Secrets -> gateway credentials.

A Service defines the mesh service Istio derives from it: `name.namespace.svc.cluster.local`,
ports with their protocols by name or `appProtocol` (api/kubeprotocol.py, the Kubernetes
source's rules). There is no EndpointSlice in file mode: its endpoints are the WorkloadEntries
and registered instances (`shoal up` replicas) of its namespace whose labels its `selector`
matches, as Istio selects WorkloadEntries into Kubernetes Services. A Service without a
selector has no endpoints; an ExternalName Service resolves its `externalName` by DNS.

A Secret of type `kubernetes.io/tls` serves a Gateway's `credentialName` (its name), as the
`secrets/NAME/` files do; where both exist, the files win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from shoal.api import Resource
from shoal.api.kubeprotocol import EXPORT_TO_ANNOTATION, port_protocol, service_hostname
from shoal.api.kubernetes import KubeSecretSpec, KubeServiceSpec
from shoal.api.serviceentry import WorkloadEntrySpec
from shoal.model.snapshot import Credential, Endpoint, Port, Service


def _ports(spec: KubeServiceSpec) -> tuple[Port, ...]:
    out = []
    for p in spec.ports:
        if p.protocol == "SCTP":
            continue  # Envoy cannot proxy SCTP
        target = p.target_port if isinstance(p.target_port, int) else None
        out.append(
            Port(
                number=p.port,
                name=p.name,
                protocol=port_protocol(p.name, p.protocol, p.app_protocol),
                # a named targetPort is the workload's: its WorkloadEntry `ports` say it
                target_port=target if target != p.port else None,
            )
        )
    return tuple(out)


def _export_to(res: Resource) -> tuple[str, ...]:
    # Istio reads a Service's visibility from this annotation, comma-separated
    value = res.meta.annotations.get(EXPORT_TO_ANNOTATION, "")
    return tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))


def file_service(
    res: Resource,
    entries: Sequence[Resource],
    instances: Iterable[tuple[str, Endpoint]],
    endpoint_of: Callable[[WorkloadEntrySpec, str, str], Endpoint],
) -> Service:
    """The mesh service of Service `res`, with the endpoints its selector picks from
    WorkloadEntries `entries` and `instances` ((namespace, endpoint) of other registries)."""
    spec = res.spec
    assert isinstance(spec, KubeServiceSpec)
    namespace = res.meta.namespace
    host = service_hostname(res.meta.name, namespace)
    ports = _ports(spec)
    if spec.type == "ExternalName":
        return Service(
            hostname=host,
            namespace=namespace,
            ports=ports,
            resolution="DNS",
            location="MESH_EXTERNAL",
            endpoints=(Endpoint(address=spec.external_name.rstrip(".")),),
            export_to=_export_to(res),
        )
    endpoints: list[Endpoint] = []
    selector = spec.selector
    if selector:  # Kubernetes: no selector (or an empty one) selects nothing by itself
        for we in entries:
            assert isinstance(we.spec, WorkloadEntrySpec)
            if we.meta.namespace == namespace and all(
                we.spec.labels.get(k) == v for k, v in selector.items()
            ):
                endpoints.append(endpoint_of(we.spec, namespace, we.meta.name))
        endpoints += [e for ns, e in instances if ns == namespace and e.matches(selector)]
    headless = spec.cluster_ip == "None"
    addresses = tuple(ip for ip in (spec.cluster_ips or [spec.cluster_ip]) if ip and ip != "None")
    return Service(
        hostname=host,
        namespace=namespace,
        ports=ports,
        addresses=addresses,
        resolution="NONE" if headless else "STATIC",
        location="MESH_INTERNAL",
        export_to=_export_to(res),
        endpoints=tuple(sorted(endpoints, key=lambda e: (e.address, sorted(e.ports.items())))),
    )


def tls_secrets(resources: Iterable[Resource]) -> dict[str, Credential]:
    """The gateway credentials `kubernetes.io/tls` Secrets hold, by Secret name (the first in
    namespace/name order wins a name)."""
    found: dict[str, Credential] = {}
    for res in resources:
        spec = res.spec
        if isinstance(spec, KubeSecretSpec) and spec.is_tls:
            cert, key = spec.value("tls.crt"), spec.value("tls.key")
            assert cert is not None and key is not None  # checked when loaded
            ca = spec.value("ca.crt") or ""  # a MUTUAL server's client CAs
            found.setdefault(res.meta.name, Credential(res.meta.name, cert, key, ca))
    return found
