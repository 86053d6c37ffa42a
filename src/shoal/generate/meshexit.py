"""Routes that leave the mesh drop the caller's peer-identity headers.

The outbound HCM states who calls in `x-shoal-peer-*` request headers (telemetry_peer.py) for
the server sidecar's metrics. A host outside the mesh has no sidecar to read and strip them,
so they would tell it the caller's workload, app and version. Every route whose destination
is outside the mesh removes them, as the router's last step (after the header filter set
them): the ALLOW_ANY catch-all (any host not in the registry) and destinations that are
ServiceEntries with `location: MESH_EXTERNAL` (a weighted route per destination). Only
routes change: listeners and clusters stay shared by every proxy.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc

from shoal.api.virtualservice import Destination
from shoal.generate.telemetry_peer import PEER_HEADERS
from shoal.model import MeshSnapshot, Service

PEER_HEADER_NAMES = tuple(PEER_HEADERS)


def outside(service: Service | None) -> bool:
    """No sidecar of this mesh will receive the request (unknown hosts: the catch-all)."""
    return service is None or service.location == "MESH_EXTERNAL"


def destination_outside(snapshot: MeshSnapshot, dest: Destination, namespace: str) -> bool:
    # a host missing from the registry is routed to a cluster that does not exist (no traffic),
    # so only a known external service counts here; the catch-all covers unknown hosts
    service = snapshot.services.get(snapshot.resolve(dest.host, namespace))
    return service is not None and outside(service)


def strip_peer_headers(target: rc.Route | rc.WeightedCluster.ClusterWeight) -> None:
    target.request_headers_to_remove.extend(
        h for h in PEER_HEADER_NAMES if h not in target.request_headers_to_remove
    )
