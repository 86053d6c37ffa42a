"""What a new snapshot can take over from the previous one's generated resources.

Generation is pure, so a resource whose inputs did not change is the same resource: rather
than build and serialize it again, a new `ConfigGenerator` takes the previous one's object.
Two granularities:

* `routing_inputs`: everything in a snapshot except endpoints (and its version and errors).
  When it is equal to the previous snapshot's — the common endpoint-only change — clusters,
  route tables and listeners are all taken over as they are.
* per service: a service's clusters depend on the service (minus endpoints, unless it is
  resolved by DNS and they are inlined) and its DestinationRule; its load assignments on the
  service and the DestinationRule. Unchanged services keep their objects.

A proxy whose Sidecar or `exportTo` narrows what it sees gets the resources of its visible
services only (`ServiceResources.narrow`); a narrowed map none of whose services changed is the
previous snapshot's object again, so the streams of that scope see "unchanged" by identity.

Caches hold only what the current snapshot uses, so entries of deleted services are dropped
with the snapshot that stopped using them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.api import Resource
from shoal.generate.prepared import PreparedResource
from shoal.generate.resourceset import ResourceSet
from shoal.model import MeshSnapshot, Service

_NOT_ROUTING = frozenset({"version", "errors"})


def without_endpoints(service: Service) -> Service:
    """The part of a service that clusters and routes depend on."""
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return service  # DNS clusters inline their endpoints
    return service.without_endpoints


def routing_inputs(snapshot: MeshSnapshot) -> tuple[tuple[str, object], ...]:
    """Every input of clusters, routes and listeners; new snapshot fields are included
    automatically, so a policy added later cannot be missed here."""
    parts: list[tuple[str, object]] = []
    for f in dataclasses.fields(snapshot):
        if f.name in _NOT_ROUTING:
            continue
        value = getattr(snapshot, f.name)
        if f.name == "services":
            value = tuple(without_endpoints(s) for s in value.values())
        parts.append((f.name, value))
    return tuple(parts)


# the routing input ConfigGenerator adds beside the snapshot's fields (emptydest.py); virtual
# hosts key on their own part of it, sidecar listeners do not depend on it
EMPTY_DESTINATIONS = "empty_destinations"
_VIRTUAL_SERVICES = frozenset({"virtual_services", "vs_by_host", EMPTY_DESTINATIONS})


def vhost_basis(routing: tuple[tuple[str, object], ...]) -> tuple[tuple[str, object], ...]:
    """`routing_inputs` without VirtualServices: what every virtual host depends on besides
    its own VirtualService (its key in routes.VhostCache)."""
    return tuple(p for p in routing if p[0] not in _VIRTUAL_SERVICES)


# Sidecar listeners name their route table (RDS) and clusters only by name; nothing in them
# depends on services, VirtualServices or DestinationRules (test_reuse checks a VS and a DR
# edit leave them equal to a fresh build). Everything else, new fields included, counts.
_NOT_FOR_SIDECAR_LISTENERS = frozenset(
    {
        "services",
        "virtual_services",
        "vs_by_host",
        "destination_rules",
        "dr_by_host",
        EMPTY_DESTINATIONS,
    }
)


def sidecar_listener_basis(
    routing: tuple[tuple[str, object], ...],
) -> tuple[tuple[str, object], ...]:
    """`routing_inputs` without what sidecar listeners cannot depend on: two snapshots with
    equal bases have equal sidecar listeners."""
    return tuple(p for p in routing if p[0] not in _NOT_FOR_SIDECAR_LISTENERS)


def cluster_key(snapshot: MeshSnapshot, service: Service) -> tuple[object, ...]:
    # files: certificates a DestinationRule's `tls` names are inlined into its clusters
    return (
        without_endpoints(service),
        snapshot.dr_by_host.get(service.hostname),
        snapshot.mesh_config,
        snapshot.files,
    )


def assignment_key(snapshot: MeshSnapshot, service: Service) -> tuple[Service, Resource | None]:
    return (service, snapshot.dr_by_host.get(service.hostname))


@dataclass
class ServiceResources:
    """One kind of per-service resources of a snapshot: by service host, the inputs they were
    made from and the resources; the map of them all by name; and maps narrowed to the
    services some proxies see, made on demand."""

    entries: dict[str, tuple[object, list[PreparedResource]]] = field(default_factory=dict)
    resources: ResourceSet = field(default_factory=ResourceSet)
    # hosts whose resources were made anew or dropped since the previous snapshot (None:
    # there was none), and the previous snapshot's narrowed maps
    changed: frozenset[str] | None = None
    _narrowed: dict[frozenset[str], ResourceSet] = field(default_factory=dict)
    _prior_narrowed: dict[frozenset[str], ResourceSet] = field(default_factory=dict)

    def narrow(self, visible: frozenset[str]) -> ResourceSet:
        """The resources of the services in `visible`: the previous snapshot's map for the
        same services when none of them changed, else built once for every proxy of that
        scope."""
        found = self._narrowed.get(visible)
        if found is None:
            prior = self._prior_narrowed.get(visible)
            if prior is not None and self.changed is not None and self.changed.isdisjoint(visible):
                found = prior
            else:
                entries = self.entries
                found = ResourceSet.of(
                    r for host in visible if host in entries for r in entries[host][1]
                )
                if prior is not None:
                    found.share_names(prior)
            self._narrowed[visible] = found
        return found


def take_over(
    snapshot: MeshSnapshot,
    previous: ServiceResources | None,
    key: Callable[[Service], object],
    make: Callable[[Service], list[PreparedResource]],
) -> ServiceResources:
    """Per-service resources for `snapshot`, taking `previous`'s where the inputs are equal.
    When nothing changed at all the previous map object itself is kept, so streams can tell
    "unchanged" by identity without looking inside."""
    out = ServiceResources()
    prior = previous.entries if previous is not None else {}
    changed: set[str] = set()
    items: list[PreparedResource] = []
    for service in snapshot.services.values():
        inputs = key(service)
        found = prior.get(service.hostname)
        if found is not None and found[0] == inputs:
            made = found[1]
        else:
            made = make(service)
            changed.add(service.hostname)
        out.entries[service.hostname] = (inputs, made)
        items.extend(made)
    if previous is None:
        out.resources = ResourceSet.of(items)
        return out
    changed.update(prior.keys() - out.entries.keys())
    out.changed = frozenset(changed)
    if changed:
        out.resources = ResourceSet.of(items)
        out.resources.share_names(previous.resources)
    else:
        out.resources = previous.resources
    out._prior_narrowed = previous._narrowed
    return out
