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

Caches hold only what the current snapshot uses, so entries of deleted services are dropped
with the snapshot that stopped using them.
"""

from __future__ import annotations

import dataclasses

from shoal.api import Resource
from shoal.model import MeshSnapshot, Service

_NOT_ROUTING = frozenset({"version", "errors"})


def without_endpoints(service: Service) -> Service:
    """The part of a service that clusters and routes depend on."""
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN") or not service.endpoints:
        return service  # DNS clusters inline their endpoints
    return dataclasses.replace(service, endpoints=())


def routing_inputs(snapshot: MeshSnapshot) -> tuple[object, ...]:
    """Every input of clusters, routes and listeners; new snapshot fields are included
    automatically, so a policy added later cannot be missed here."""
    parts: list[object] = []
    for f in dataclasses.fields(snapshot):
        if f.name in _NOT_ROUTING:
            continue
        value = getattr(snapshot, f.name)
        if f.name == "services":
            value = tuple(without_endpoints(s) for s in value.values())
        parts.append((f.name, value))
    return tuple(parts)


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
