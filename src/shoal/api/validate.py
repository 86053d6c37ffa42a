"""Cross-resource checks: what a resource refers to must exist in the rest of the config.

Each resource was valid on its own when loaded; here a VirtualService is refused if it
routes to a host no ServiceEntry defines, to a subset no DestinationRule defines, or to a
port the service does not have. Envoy would accept such routes and answer 503 at run
time, which is the failure DESIGN.md says a user must never see because of config.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.errors import ConfigError
from shoal.api.gatewayapi.attach import gateway_api_status
from shoal.api.hosts import fqdn, host_matches, is_cluster_local
from shoal.api.kubeprotocol import service_hostname
from shoal.api.kubernetes import KubeServiceSpec
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.resource import Resource, ResourceKey
from shoal.api.serviceentry import ServiceEntrySpec
from shoal.api.virtualservice import Destination, VirtualServiceSpec
from shoal.common.capturecfg import CaptureError, from_annotations

Path = tuple[str | int, ...]


@dataclass
class _Index:
    """Services (host -> port numbers) and subsets (host -> names) visible in the mesh."""

    ports: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    subsets: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def service_host(self, host: str) -> str | None:
        """The registered host (possibly a wildcard) that serves `host`."""
        if host in self.ports:
            return host
        for known in self.ports:
            if known.startswith("*") and host_matches(known, host):
                return known
        return None


def _build_index(
    resources: Sequence[Resource],
    namespaces: Collection[str],
    known_hosts: Mapping[str, Collection[int]],
) -> _Index:
    index = _Index()
    for host, port_numbers in known_hosts.items():
        index.ports[host].update(port_numbers)
    for resource in resources:
        spec = resource.spec
        ns = resource.meta.namespace
        if isinstance(spec, ServiceEntrySpec):
            for host in spec.hosts:
                index.ports[fqdn(host, ns, namespaces=namespaces)].update(
                    p.number for p in spec.ports
                )
        elif isinstance(spec, KubeServiceSpec):
            host = service_hostname(resource.meta.name, ns)
            index.ports[host].update(p.port for p in spec.ports if p.protocol != "SCTP")
        elif isinstance(spec, LocalWorkloadSpec):
            host = fqdn(spec.service_name(resource.meta.name), ns, namespaces=namespaces)
            index.ports[host].update(p.number for p in spec.ports)
        elif isinstance(spec, DestinationRuleSpec):
            host = fqdn(spec.host, ns, namespaces=namespaces)
            index.subsets[host].update(spec.subset_names())
    return index


def _check_destination(
    vs: Resource, path: Path, dest: Destination, index: _Index, namespaces: Collection[str]
) -> list[ConfigError]:
    host = fqdn(dest.host, vs.meta.namespace, namespaces=namespaces)
    service = index.service_host(host)
    if service is None:
        return [
            vs.error(
                (*path, "host"),
                f"host {dest.host!r} (resolved to {host!r}) is not defined by any ServiceEntry "
                "or Service",
            )
        ]
    errors = []
    if dest.subset and dest.subset not in index.subsets.get(host, set()):
        defined = ", ".join(sorted(index.subsets.get(host, set()))) or "none"
        errors.append(
            vs.error(
                (*path, "subset"),
                f"subset {dest.subset!r} is not defined by any DestinationRule for host "
                f"{host!r} (defined: {defined})",
            )
        )
    ports = sorted(index.ports[service])
    if dest.port is not None:
        if ports and dest.port.number not in ports:
            errors.append(
                vs.error(
                    (*path, "port", "number"),
                    f"port {dest.port.number} is not a port of {host!r} "
                    f"(ports: {', '.join(map(str, ports))})",
                )
            )
    elif len(ports) > 1:
        errors.append(
            vs.error(
                (*path, "host"),
                f"{host!r} has several ports ({', '.join(map(str, ports))}); "
                "choose one with 'port.number'",
            )
        )
    return errors


def _unique(resources: Sequence[Resource]) -> tuple[list[Resource], list[ConfigError]]:
    """Keep the first resource of each key in (file, line) order; report the others."""
    first: dict[ResourceKey, Resource] = {}
    errors = []
    for resource in sorted(resources, key=lambda r: (r.origin.file, r.origin.line)):
        earlier = first.get(resource.key)
        if earlier is None:
            first[resource.key] = resource
            continue
        errors.append(
            resource.error(
                ("metadata", "name"),
                f"duplicate {resource.kind} {resource.namespaced_name}: already defined at "
                f"{earlier.origin.file}:{earlier.origin.line}",
            )
        )
    kept = set(map(id, first.values()))
    return [r for r in resources if id(r) in kept], errors


def service_ports(
    resources: Sequence[Resource], known_hosts: Mapping[str, Collection[int]] | None = None
) -> Callable[[str], set[int] | None]:
    """host -> the port numbers of the service serving it among `resources` (and
    `known_hosts`), None when none does: what Gateway API status is computed against."""
    known_hosts = known_hosts or {}
    namespaces = {r.meta.namespace for r in resources}
    namespaces |= {h.split(".")[1] for h in known_hosts if is_cluster_local(h)}
    return _ports_of(_build_index(resources, namespaces, known_hosts))


def _ports_of(index: _Index) -> Callable[[str], set[int] | None]:
    def ports_of(host: str) -> set[int] | None:
        known = index.service_host(host)
        return None if known is None else index.ports[known]

    return ports_of


def validate_references(
    resources: Sequence[Resource],
    *,
    known_hosts: Mapping[str, Collection[int]] | None = None,
) -> tuple[list[Resource], list[ConfigError]]:
    """The resources that are valid together (in input order), and why the others are not.

    `known_hosts` adds services from other registries (Kubernetes, local workloads):
    fully qualified host -> port numbers.
    """
    unique, errors = _unique(resources)
    known_hosts = known_hosts or {}
    # Two-label hosts ("reviews.shop") are cluster-local only if "shop" is a namespace.
    namespaces = {r.meta.namespace for r in unique}
    namespaces |= {h.split(".")[1] for h in known_hosts if is_cluster_local(h)}
    index = _build_index(unique, namespaces, known_hosts)

    ports_of = _ports_of(index)
    # Gateway API routes and Gateways whose parents or references do not resolve (their
    # status conditions say why; api/gatewayapi/attach.py)
    gateway_api = gateway_api_status(unique, ports_of)
    gateway_api_errors: dict[ResourceKey, list[ConfigError]] = {}
    for error in gateway_api.errors:
        namespace, _, name = error.name.partition("/")
        gateway_api_errors.setdefault((error.kind, namespace, name), []).append(error)
    accepted = []
    service_ports: dict[str, tuple[Resource, object]] = {}
    for resource in unique:
        found: list[ConfigError] = list(gateway_api_errors.get(resource.key, ()))
        if isinstance(resource.spec, LocalWorkloadSpec):
            host = fqdn(resource.spec.service_name(resource.meta.name), resource.meta.namespace)
            ports = sorted((p.number, p.name, p.protocol) for p in resource.spec.ports)
            first = service_ports.setdefault(host, (resource, ports))
            if first[1] != ports:
                found.append(
                    resource.error(
                        ("spec", "ports"),
                        f"service {host!r} is also run by LocalWorkload "
                        f"{first[0].namespaced_name} with different ports; "
                        "workloads of one service must declare the same ports",
                    )
                )
        if isinstance(resource.spec, LocalWorkloadSpec):
            try:  # the capture `shoal up --netns` would give its pods
                from_annotations(resource.meta.annotations)
            except CaptureError as err:
                found.append(resource.error(("metadata", "annotations"), str(err)))
        if isinstance(resource.spec, VirtualServiceSpec):
            for path, dest in resource.spec.destinations():
                found += _check_destination(resource, ("spec", *path), dest, index, namespaces)
        if found:
            errors += found
        else:
            accepted.append(resource)
    return accepted, sorted(errors)
