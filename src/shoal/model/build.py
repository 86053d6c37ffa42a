"""Build a `MeshSnapshot` from validated config resources and registry instances.

ServiceEntries and WorkloadEntries are the registry when there is no Kubernetes; local
processes started by `shoal up` arrive as extra `RegistryInstance`s. Both end up as
`Endpoint`s of `Service`s here, so generation never needs to know where a workload came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from shoal.api import ConfigError, Resource, fqdn
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.meshconfig import MeshConfigSpec
from shoal.api.serviceentry import ServiceEntrySpec, WorkloadEntrySpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.memo import Memo
from shoal.model.fileservices import file_service, tls_secrets
from shoal.model.gatewayapi import translate as translate_gateway_api
from shoal.model.smi import translate as translate_smi
from shoal.model.snapshot import Credential, Endpoint, MeshSnapshot, Port, Service
from shoal.model.vips import LocalVips

TLS_MODE_LABEL = "security.istio.io/tlsMode"


@dataclass(frozen=True)
class RegistryInstance:
    """A workload instance registered by a source other than config (e.g. `shoal up`)."""

    hostname: str
    endpoint: Endpoint
    namespace: str = "default"


class SnapshotMemo:
    """What one builder carries from a build to the next: WorkloadEntrySpec -> its Endpoint,
    and (ServiceEntry resource, host) -> its Service for ServiceEntries without a workload
    selector (such a Service then depends on nothing else). Unchanged files keep their parsed
    objects (api.store caches parses), so a snapshot rebuilt for one edit rebuilds that edit's
    services and endpoints, not a thousand others. Owned by the builder (`engine.Pipeline`),
    never process-wide: two builders in one process do not rotate away each other's entries."""

    def __init__(self) -> None:
        self._endpoints: Memo[Endpoint] = Memo()
        self._services: Memo[Service] = Memo()

    def rotate(self) -> None:
        """A build starts: what the previous build did not use is dropped."""
        self._endpoints.rotate()
        self._services.rotate()

    def endpoint(self, spec: WorkloadEntrySpec, namespace: str, workload: str = "") -> Endpoint:
        return self._endpoints.get(
            (spec, namespace, workload), lambda: _make_endpoint(spec, namespace, workload)
        )

    def service(
        self, host: str, res: Resource, spec: ServiceEntrySpec, entries: Sequence[Resource]
    ) -> Service:
        if spec.workload_selector is not None:
            return _make_service(self, host, res, spec, entries)
        return self._services.get((res, host), lambda: _make_service(self, host, res, spec, ()))


def _make_endpoint(spec: WorkloadEntrySpec, namespace: str, workload: str) -> Endpoint:
    return Endpoint(
        address=spec.address,
        labels=MappingProxyType(dict(spec.labels)),
        ports=MappingProxyType(dict(spec.ports)),
        weight=spec.weight or 1,
        service_account=spec.service_account,
        # Istio's label for "this workload's sidecar accepts mesh mTLS" (automatic mTLS)
        tls_mode=spec.labels.get(TLS_MODE_LABEL, "disabled"),
        # a WorkloadEntry's name is its workload's (Istio); inline endpoints have none
        workload=workload,
        namespace=namespace,
    )


def _make_service(
    memo: SnapshotMemo,
    host: str,
    res: Resource,
    spec: ServiceEntrySpec,
    entries: Sequence[Resource],
) -> Service:
    ports = tuple(
        Port(number=p.number, name=p.name, protocol=p.protocol, target_port=p.target_port)
        for p in spec.ports
    )
    endpoints = [memo.endpoint(e, res.meta.namespace) for e in spec.endpoints]
    if spec.workload_selector is not None:
        selector = spec.workload_selector.labels
        for we in entries:
            assert isinstance(we.spec, WorkloadEntrySpec)
            if we.meta.namespace == res.meta.namespace and all(
                we.spec.labels.get(k) == v for k, v in selector.items()
            ):
                endpoints.append(memo.endpoint(we.spec, we.meta.namespace, we.meta.name))
    return Service(
        hostname=host,
        namespace=res.meta.namespace,
        ports=ports,
        addresses=tuple(spec.addresses),
        resolution=spec.resolution,
        location=spec.location,
        endpoints=tuple(sorted(endpoints, key=lambda e: (e.address, sorted(e.ports.items())))),
        export_to=tuple(spec.export_to),
    )


def build_snapshot(
    version: str,
    resources: Iterable[Resource],
    instances: Iterable[RegistryInstance] = (),
    errors: Sequence[ConfigError] = (),
    credentials: Mapping[str, Credential] | None = None,
    *,
    files: Mapping[str, str] | None = None,
    registry: Mapping[str, Service] | None = None,
    registry_namespaces: Iterable[str] = (),
    memo: SnapshotMemo | None = None,
    local_vips: LocalVips | None = None,
) -> MeshSnapshot:
    """Index validated resources into a snapshot. Resources must already be validated.

    `registry`: services another registry already built (Kubernetes Services with their
    endpoints), by hostname; they win a host over ServiceEntries, as Istio's Kubernetes
    registry comes first. `registry_namespaces`: the namespaces that registry knows.
    `memo`: the builder's memory of its previous build (none: everything is made afresh).
    `local_vips`: gives each LocalWorkload service an address (`shoal up --netns`; vips.py)."""
    if memo is None:
        memo = SnapshotMemo()
    memo.rotate()
    by_kind: dict[str, list[Resource]] = {}
    resources = list(resources)
    # Gateway API kinds are served as the Istio Gateways and VirtualServices they stand for
    resources += translate_gateway_api(resources)
    resources += translate_smi(resources)  # SMI TrafficSplits: VirtualService weights
    ordered = sorted(resources, key=lambda r: r.key)
    for res in ordered:
        by_kind.setdefault(res.kind, []).append(res)
    instances = tuple(instances)
    # "a.b" means service a in namespace b only when b is a namespace the mesh knows
    # (otherwise it is an external name like example.com): the same rule validation uses.
    registry = registry or {}
    namespaces = frozenset(
        {r.meta.namespace for r in ordered}
        | {i.namespace for i in instances}
        | {s.namespace for s in registry.values()}
        | set(registry_namespaces)
    )

    def resolve(host: str, namespace: str) -> str:
        return fqdn(host, namespace, namespaces=namespaces)

    entries = by_kind.get("WorkloadEntry", [])

    services: dict[str, Service] = dict(registry)
    # Kubernetes Services of the config directory, then ServiceEntries: Istio's Kubernetes
    # registry comes first
    selectable = [(i.namespace, i.endpoint) for i in instances]
    selected: set[str] = set()  # hosts whose instances their selector picked
    for res in by_kind.get("Service", []):
        service = file_service(res, entries, selectable, memo.endpoint)
        if services.setdefault(service.hostname, service) is service:
            selected.add(service.hostname)
    for res in by_kind.get("ServiceEntry", []):
        assert isinstance(res.spec, ServiceEntrySpec)
        for host in res.spec.hosts:
            name = resolve(host, res.meta.namespace)
            # first ServiceEntry (in namespace/name order) wins a host, as in Istio
            services.setdefault(name, memo.service(name, res, res.spec, entries))

    for res in by_kind.get("LocalWorkload", []):
        assert isinstance(res.spec, LocalWorkloadSpec)
        name = resolve(res.spec.service_name(res.meta.name), res.meta.namespace)
        ports = tuple(
            Port(number=p.number, name=p.name, protocol=p.protocol, target_port=p.target_port)
            for p in res.spec.ports
        )
        # endpoints arrive as registry instances while `shoal up` runs the replicas
        addresses = (local_vips.get(name),) if local_vips is not None else ()
        services.setdefault(
            name,
            Service(hostname=name, namespace=res.meta.namespace, ports=ports, addresses=addresses),
        )

    extra: dict[str, list[Endpoint]] = {}
    for inst in instances:
        extra.setdefault(inst.hostname, []).append(inst.endpoint)
    for host, eps in extra.items():
        svc = services.get(host)
        if svc is not None and host not in selected:
            merged = tuple(
                sorted((*svc.endpoints, *eps), key=lambda e: (e.address, sorted(e.ports.items())))
            )
            services[host] = Service(
                hostname=svc.hostname,
                namespace=svc.namespace,
                ports=svc.ports,
                addresses=svc.addresses,
                resolution=svc.resolution,
                location=svc.location,
                endpoints=merged,
                export_to=svc.export_to,
            )

    vs_by_host: dict[str, list[Resource]] = {}
    for res in by_kind.get("VirtualService", []):
        assert isinstance(res.spec, VirtualServiceSpec)
        if res.spec.gateways and "mesh" not in res.spec.gateways:
            continue  # bound to gateways only: not for sidecars
        for host in res.spec.hosts:
            vs_by_host.setdefault(resolve(host, res.meta.namespace), []).append(res)

    dr_by_host: dict[str, Resource] = {}
    for res in by_kind.get("DestinationRule", []):
        assert isinstance(res.spec, DestinationRuleSpec)
        dr_by_host.setdefault(resolve(res.spec.host, res.meta.namespace), res)

    return MeshSnapshot(
        version=version,
        services=MappingProxyType(dict(sorted(services.items()))),
        virtual_services=tuple(by_kind.get("VirtualService", [])),
        destination_rules=tuple(by_kind.get("DestinationRule", [])),
        errors=tuple(errors),
        namespaces=namespaces,
        vs_by_host=MappingProxyType({h: tuple(v) for h, v in sorted(vs_by_host.items())}),
        dr_by_host=MappingProxyType(dict(sorted(dr_by_host.items()))),
        gateways=tuple(by_kind.get("Gateway", [])),
        sidecars=tuple(by_kind.get("Sidecar", [])),
        rate_limits=tuple(by_kind.get("LocalRateLimit", [])),
        telemetries=tuple(by_kind.get("Telemetry", [])),
        credentials=MappingProxyType(
            dict(sorted({**tls_secrets(ordered), **(credentials or {})}.items()))
        ),
        peer_authentications=tuple(by_kind.get("PeerAuthentication", [])),
        authorization_policies=tuple(by_kind.get("AuthorizationPolicy", [])),
        request_authentications=tuple(by_kind.get("RequestAuthentication", [])),
        files=MappingProxyType(dict(sorted((files or {}).items()))),
        mesh_config=next(
            (r.spec for r in by_kind.get("MeshConfig", []) if isinstance(r.spec, MeshConfigSpec)),
            MeshConfigSpec(),
        ),
    )
