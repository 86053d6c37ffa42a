"""Consistent-hash keys: a DestinationRule's `loadBalancer.consistentHash` on the routes.

Envoy splits consistent hashing in two: the cluster picks the algorithm (RING_HASH or
MAGLEV, see clusterpolicy.py) and each route says what to hash (`RouteAction.hash_policy`).
A route that targets a cluster with a consistent-hash policy therefore carries that
policy's key. When a route splits traffic between clusters, the first cluster (in route
order) that has one supplies the key, as in Istio.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from envoy.config.route.v3 import route_components_pb2 as rc

from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.trafficpolicy import ConsistentHashLB
from shoal.generate.names import parse_outbound
from shoal.model import MeshSnapshot

HashPolicy: TypeAlias = rc.RouteAction.HashPolicy


def consistent_hash(snapshot: MeshSnapshot, cluster: str) -> ConsistentHashLB | None:
    """The consistent-hash settings of an outbound cluster, if its policy has any."""
    parsed = parse_outbound(cluster)
    if parsed is None:
        return None
    port, subset, host = parsed
    dr = snapshot.dr_by_host.get(host)
    if dr is None or not isinstance(dr.spec, DestinationRuleSpec):
        return None
    policy = dr.spec.policy_for(port, subset)
    lb = policy.load_balancer if policy is not None else None
    return lb.consistent_hash if lb is not None else None


def hash_policy(ch: ConsistentHashLB) -> HashPolicy | None:
    """Envoy's hash policy for one hash key (None when no key is set)."""
    if ch.http_header_name:
        return HashPolicy(header=HashPolicy.Header(header_name=ch.http_header_name))
    if ch.http_query_parameter_name:
        return HashPolicy(
            query_parameter=HashPolicy.QueryParameter(name=ch.http_query_parameter_name)
        )
    if ch.use_source_ip:
        return HashPolicy(connection_properties=HashPolicy.ConnectionProperties(source_ip=True))
    cookie = ch.http_cookie
    if cookie is not None:
        out = HashPolicy(cookie=HashPolicy.Cookie(name=cookie.name, path=cookie.path))
        if cookie.ttl is not None:
            # A ttl (0s included) makes Envoy set the cookie when the request lacks it.
            out.cookie.ttl.FromNanoseconds(round(cookie.ttl * 1e9))
        for attr in cookie.attributes:
            out.cookie.attributes.add(name=attr.name, value=attr.value)
        return out
    return None


def _targets(action: rc.RouteAction) -> Iterable[str]:
    if action.cluster:
        yield action.cluster
    for cw in action.weighted_clusters.clusters:
        yield cw.name


def hash_policies(snapshot: MeshSnapshot, action: rc.RouteAction) -> list[HashPolicy]:
    """The hash policy `action` needs for the clusters it already targets (maybe none)."""
    for cluster in _targets(action):
        ch = consistent_hash(snapshot, cluster)
        policy = hash_policy(ch) if ch is not None else None
        if policy is not None:
            return [policy]
    return []
