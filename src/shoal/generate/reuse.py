"""What a new snapshot can take over from the previous one's generated resources.

Generation is pure, so a resource whose inputs did not change is the same resource: rather
than build and serialize it again, a new `ConfigGenerator` takes the previous one's object.
Two granularities:

* `Keep`, from the push request (what changed): when only endpoints changed -- the common
  case -- clusters, route tables and listeners are all taken over as they are; when only
  VirtualServices did, the virtual hosts of the others; when only services, VirtualServices
  or DestinationRules did, sidecar listeners.
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

from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.api import Resource
from shoal.generate.prepared import PreparedResource
from shoal.generate.resourceset import ResourceSet
from shoal.model import MeshSnapshot, PushRequest, Service
from shoal.model.push import REGISTRY_KINDS


def without_endpoints(service: Service) -> Service:
    """The part of a service that clusters and routes depend on."""
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return service  # DNS clusters inline their endpoints
    return service.without_endpoints


def _shape(service: Service | None) -> Service | None:
    return without_endpoints(service) if service is not None else None


# Sidecar listeners name their route table (RDS) and clusters only by name; nothing else in
# them depends on services, VirtualServices or DestinationRules but which per-route filters
# the route table turns on, and that is part of their cache key (proxyconfig._listener_key;
# test_reuse checks a VS and a DR edit leave them equal to a fresh build). Any other kind,
# new kinds included, counts.
_NOT_FOR_SIDECAR_LISTENERS = REGISTRY_KINDS | {"VirtualService", "DestinationRule"}


@dataclass(frozen=True)
class Keep:
    """What a new generation takes over whole from the previous one, decided from the push
    request: lists of what may change name what is safe, so a kind added later (or a field
    of the snapshot that no kind feeds) is never taken over by mistake."""

    # clusters, route tables and listeners: only endpoints changed
    routing: bool = False
    # virtual hosts: only VirtualServices (and endpoints) changed
    virtual_hosts: bool = False
    # sidecar listeners: only services, VirtualServices and DestinationRules changed
    sidecar_listeners: bool = False

    @staticmethod
    def of(
        previous: MeshSnapshot, snapshot: MeshSnapshot, push: PushRequest, *, same_empty: bool
    ) -> Keep:
        """`same_empty`: the set of weighted destinations without endpoints (emptydest.py)
        is unchanged; routes depend on it, virtual hosts key on their own part of it."""
        if push.full:
            return Keep()
        # registry changes that leave every touched service's shape as it was
        shapes_same = all(
            _shape(previous.services.get(h)) == _shape(snapshot.services.get(h)) for h in push.hosts
        )
        others = push.kinds - REGISTRY_KINDS
        return Keep(
            routing=shapes_same and not others and same_empty,
            virtual_hosts=shapes_same and others <= {"VirtualService"},
            sidecar_listeners=push.kinds <= _NOT_FOR_SIDECAR_LISTENERS,
        )


def cluster_key(snapshot: MeshSnapshot, service: Service) -> tuple[object, ...]:
    # files, credentials: certificates a DestinationRule's `tls` names are inlined into its
    # clusters
    return (
        without_endpoints(service),
        snapshot.dr_by_host.get(service.hostname),
        snapshot.mesh_config,
        snapshot.files,
        snapshot.credentials,
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
