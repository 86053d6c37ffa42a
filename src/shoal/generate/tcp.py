"""TCP routing: a VirtualService's `tcp` routes as Envoy `tcp_proxy`, weighted by destination.

Used by gateway servers with a TCP-like protocol (TCP, MONGO, MYSQL, REDIS, or TLS terminated
by the gateway). The first `tcp` route whose match applies (no match, or a match on this
gateway and port) wins, as in Istio.
"""

from __future__ import annotations

from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from shoal.api.virtualservice import Destination, L4MatchAttributes, TCPRoute, VirtualServiceSpec
from shoal.generate.names import outbound_cluster
from shoal.model import MeshSnapshot

TCP_PROXY = "envoy.filters.network.tcp_proxy"


def _applies(m: L4MatchAttributes, gateway: str, port: int) -> bool:
    if m.port is not None and m.port != port:
        return False
    return not m.gateways or gateway in m.gateways


def select_route(vs: VirtualServiceSpec, gateway_refs: set[str], port: int) -> TCPRoute | None:
    """The first tcp route of `vs` for traffic on `port` of a gateway known as `gateway_refs`."""
    for route in vs.tcp:
        if not route.match or any(
            _applies(m, ref, port) for m in route.match for ref in gateway_refs
        ):
            return route
    return None


def cluster_for(snapshot: MeshSnapshot, dest: Destination, namespace: str) -> str:
    host = snapshot.resolve(dest.host, namespace)
    if dest.port is not None:
        number = dest.port.number
    else:
        service = snapshot.services.get(host)
        # validation guarantees a port is given whenever the service has several
        number = service.ports[0].number if service and service.ports else 0
    return outbound_cluster(number, dest.subset, host)


def tcp_proxy(
    snapshot: MeshSnapshot, route: TCPRoute, namespace: str, stat_prefix: str
) -> tcp_proxy_pb2.TcpProxy:
    """`tcp_proxy` for `route`: one cluster, or weighted clusters for a split."""
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    dests = [d for d in route.route if d.weight > 0 or len(route.route) == 1]
    if len(dests) == 1:
        proxy.cluster = cluster_for(snapshot, dests[0].destination, namespace)
        return proxy
    for d in dests:
        proxy.weighted_clusters.clusters.append(
            tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(
                name=cluster_for(snapshot, d.destination, namespace), weight=d.weight
            )
        )
    return proxy


def refs(proxy: tcp_proxy_pb2.TcpProxy) -> frozenset[str]:
    names = {c.name for c in proxy.weighted_clusters.clusters}
    if proxy.cluster:
        names.add(proxy.cluster)
    return frozenset(names)
