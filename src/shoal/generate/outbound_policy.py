"""Outbound traffic policy: what a sidecar does with a host that is not in the registry.

The `Sidecar` resource that applies to a proxy is chosen as Istio chooses it: one in the
proxy's namespace whose `workloadSelector` matches its labels, else the selector-less one of
its namespace, else the selector-less one of the root namespace (`istio-system`). Its
`outboundTrafficPolicy.mode` (default ALLOW_ANY, as in Istio) decides the catch-all virtual
host `*` of the outbound route table:

* ALLOW_ANY: forward to the host the app asked for, through Envoy's dynamic forward proxy
  (`envoy.filters.http.dynamic_forward_proxy` plus a cluster resolving names through a DNS
  cache). In INTERCEPTION_MODE NONE apps use the sidecar as their HTTP_PROXY, so this is how
  `http://example.com/` or `http://127.0.0.1:8080/` keep working from inside the mesh.
* REGISTRY_ONLY: answer 502, like Istio's BlackHoleCluster.

The filter and the cluster are the same for every sidecar. The cluster is always there; the
filter only in listeners whose route table has the ALLOW_ANY catch-all (httpfilters.py), so
switching a proxy to REGISTRY_ONLY or back changes its route table and its outbound listener.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.clusters.dynamic_forward_proxy.v3 import cluster_pb2 as dfp_cluster_pb2
from envoy.extensions.common.dynamic_forward_proxy.v3 import dns_cache_pb2
from envoy.extensions.filters.http.dynamic_forward_proxy.v3 import (
    dynamic_forward_proxy_pb2 as dfp_filter_pb2,
)
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.api import Resource
from shoal.api.sidecar import SidecarSpec
from shoal.generate import meshexit
from shoal.generate.prepared import PreparedResource, prepare
from shoal.model import MeshSnapshot, Proxy

ROOT_NAMESPACE = "istio-system"
ALLOW_ANY = "ALLOW_ANY"
REGISTRY_ONLY = "REGISTRY_ONLY"
DFP_CLUSTER = "dynamic_forward_proxy_cluster"
PASSTHROUGH_CLUSTER = "PassthroughCluster"  # capture_listeners.py makes it
DFP_FILTER = "envoy.filters.http.dynamic_forward_proxy"
CATCH_ALL = "allow_any"
BLACKHOLE = "block_all"
_DNS_CACHE = "dynamic_forward_proxy_cache_config"


def sidecar_for(snapshot: MeshSnapshot, proxy: Proxy) -> Resource | None:
    """The Sidecar resource that applies to `proxy`, by Istio's precedence."""
    own_ns = [s for s in snapshot.sidecars if s.meta.namespace == proxy.namespace]
    for res in own_ns:
        assert isinstance(res.spec, SidecarSpec)
        selector = res.spec.workload_selector
        if selector is not None and all(
            proxy.labels.get(k) == v for k, v in selector.labels.items()
        ):
            return res
    for namespace in (proxy.namespace, ROOT_NAMESPACE):
        for res in snapshot.sidecars:
            assert isinstance(res.spec, SidecarSpec)
            if res.meta.namespace == namespace and res.spec.workload_selector is None:
                return res
    return None


def outbound_mode(snapshot: MeshSnapshot, proxy: Proxy) -> str:
    """ALLOW_ANY or REGISTRY_ONLY for `proxy`."""
    res = sidecar_for(snapshot, proxy)
    if res is None:
        return ALLOW_ANY
    assert isinstance(res.spec, SidecarSpec)
    policy = res.spec.outbound_traffic_policy
    return policy.mode if policy is not None else ALLOW_ANY


def captured(proxy: Proxy) -> bool:
    """A sidecar whose traffic iptables captures (INTERCEPTION_MODE REDIRECT, no loopback
    OUTBOUND_PORT): Istio's virtualOutbound/virtualInbound shape (capture_listeners.py)."""
    return (
        proxy.type == "sidecar"
        and proxy.interception_mode == "REDIRECT"
        and proxy.outbound_port is None
    )


def _dns_cache() -> dns_cache_pb2.DnsCacheConfig:
    # the filter and the cluster must name the same cache with the same settings
    return dns_cache_pb2.DnsCacheConfig(
        name=_DNS_CACHE, dns_lookup_family=cluster_pb2.Cluster.V4_PREFERRED
    )


def http_filters(snapshot: MeshSnapshot, proxy: Proxy) -> list[hcm_pb2.HttpFilter]:
    """The dynamic forward proxy filter for a sidecar's outbound listener whose route table
    has the ALLOW_ANY catch-all; disabled: only that route turns it on (httpfilters.py), so
    requests to mesh services never run it.
    """
    if proxy.type != "sidecar":
        return []
    config = dfp_filter_pb2.FilterConfig(dns_cache_config=_dns_cache())
    out = hcm_pb2.HttpFilter(name=DFP_FILTER, disabled=True)
    out.typed_config.Pack(config)
    return [out]


def dfp_cluster() -> PreparedResource:
    """The cluster that sends each request to the host (and port) it names."""
    cluster = cluster_pb2.Cluster(name=DFP_CLUSTER, lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED)
    cluster.connect_timeout.FromSeconds(10)
    cluster.cluster_type.name = "envoy.clusters.dynamic_forward_proxy"
    cluster.cluster_type.typed_config.Pack(
        dfp_cluster_pb2.ClusterConfig(dns_cache_config=_dns_cache())
    )
    return prepare(DFP_CLUSTER, cluster)


_DFP_CLUSTER = dfp_cluster()


def clusters(proxy: Proxy) -> list[PreparedResource]:
    """Extra clusters a sidecar needs for its catch-all (the same for every sidecar)."""
    return [_DFP_CLUSTER] if proxy.type == "sidecar" else []


def catch_all(snapshot: MeshSnapshot, proxy: Proxy) -> list[rc.VirtualHost]:
    """The `*` virtual host of the outbound route table (none for gateways)."""
    if proxy.type != "sidecar":
        return []
    route = rc.Route(match=rc.RouteMatch(prefix="/"))
    if outbound_mode(snapshot, proxy) == REGISTRY_ONLY:
        route.name = BLACKHOLE
        route.direct_response.status = 502
        return [rc.VirtualHost(name=BLACKHOLE, domains=["*"], routes=[route])]
    route.name = CATCH_ALL
    if captured(proxy):
        # the connection's original destination is where the app was going (Istio's)
        route.route.cluster = PASSTHROUGH_CLUSTER
        route.route.timeout.FromSeconds(0)
        meshexit.strip_peer_headers(route)
        return [rc.VirtualHost(name=CATCH_ALL, domains=["*"], routes=[route])]
    route.route.cluster = DFP_CLUSTER
    # the filter is off elsewhere; Envoy refuses an enabling FilterConfig without a config
    enable = rc.FilterConfig()
    enable.config.Pack(dfp_filter_pb2.PerRouteConfig())
    route.typed_per_filter_config[DFP_FILTER].Pack(enable)
    route.route.timeout.FromSeconds(0)  # as Istio's PassthroughCluster: no route timeout
    meshexit.strip_peer_headers(route)  # every host here is outside the mesh
    return [rc.VirtualHost(name=CATCH_ALL, domains=["*"], routes=[route])]
