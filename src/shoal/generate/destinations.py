"""Which Envoy cluster a VirtualService `Destination` names (routes, mirrors).

A destination names host, optional subset and optional port; the cluster is Istio's
`outbound|PORT|SUBSET|HOST`. Without a port the service's only port is meant (validation
refuses a missing port when the service has several), else the port the route serves.
"""

from __future__ import annotations

from shoal.api.virtualservice import Destination
from shoal.generate.names import outbound_cluster
from shoal.model import MeshSnapshot, Port


def destination_cluster(
    snapshot: MeshSnapshot, dest: Destination, namespace: str, port: Port
) -> str:
    host = snapshot.resolve(dest.host, namespace)
    if dest.port is not None:
        number = dest.port.number
    else:
        target = snapshot.services.get(host)
        number = target.ports[0].number if target and len(target.ports) == 1 else port.number
    return outbound_cluster(number, dest.subset, host)
