"""CDS and EDS for proxyless gRPC clients, in the shapes gRPC's xDS client accepts (gRFC A27).

The same clusters as a sidecar's (same names, `outbound|PORT|SUBSET|HOST`, same DestinationRule
subsets), cut down to what gRPC reads:

* only EDS clusters (services with endpoints from the registry): gRPC has no STRICT_DNS or
  ORIGINAL_DST cluster, so DNS-resolved and passthrough ServiceEntries are not offered;
* `lb_policy` ROUND_ROBIN or RING_HASH (with its ring sizes); Istio's default LEAST_REQUEST,
  LEAST_CONN and RANDOM become ROUND_ROBIN, MAGLEV becomes RING_HASH;
* circuit breaking keeps `max_requests` (gRFC A32); outlier detection is left out (gRPC's
  ejection is success-rate/failure-percentage only, A50, while Istio's is consecutive errors);
  a transport socket only for mTLS through gRPC's xDS credentials (proxyless_tls.py).

Endpoints: gRPC drops a locality without `load_balancing_weight` (A27), so every locality
carries one: the sum of its endpoints' weights. Unhealthy endpoints are sent UNHEALTHY and
gRPC leaves them out, as Envoy does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2

from shoal.api.destinationrule import DestinationRuleSpec
from shoal.generate import proxyless_tls
from shoal.generate.clusterpolicy import apply_traffic_policy
from shoal.generate.names import outbound_cluster
from shoal.generate.prepared import PreparedResource, prepare
from shoal.model import Endpoint, MeshSnapshot, Port, Service

_LB = cluster_pb2.Cluster


def _grpc_lb(cluster: cluster_pb2.Cluster) -> None:
    if cluster.lb_policy == _LB.MAGLEV:
        cluster.lb_policy = _LB.RING_HASH
        cluster.ClearField("maglev_lb_config")
    elif cluster.lb_policy != _LB.RING_HASH:
        cluster.lb_policy = _LB.ROUND_ROBIN


def eds_service(service: Service) -> bool:
    """Whether the service's clusters take endpoints from EDS (the only kind gRPC serves)."""
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return False
    return not (service.resolution == "NONE" and not service.endpoints)


def _dr(snapshot: MeshSnapshot, service: Service) -> DestinationRuleSpec | None:
    res = snapshot.dr_by_host.get(service.hostname)
    return res.spec if res is not None and isinstance(res.spec, DestinationRuleSpec) else None


def _subsets(dr: DestinationRuleSpec | None) -> list[tuple[str, Mapping[str, str]]]:
    return [("", {})] + ([(s.name, s.labels) for s in dr.subsets] if dr is not None else [])


def cluster(
    service: Service,
    port: Port,
    subset: str,
    dr: DestinationRuleSpec | None,
    *,
    secure: bool = False,
) -> PreparedResource | None:
    """The cluster, or None when its DestinationRule asks for TLS the client cannot speak
    (proxyless_tls.py)."""
    policy = dr.policy_for(port.number, subset) if dr else None
    tls = policy.tls if policy is not None else None
    if proxyless_tls.refused(tls, secure=secure):
        return None
    name = outbound_cluster(port.number, subset, service.hostname)
    out = cluster_pb2.Cluster(name=name, type=_LB.EDS)
    out.eds_cluster_config.service_name = name
    out.eds_cluster_config.eds_config.CopyFrom(
        config_source_pb2.ConfigSource(
            ads=config_source_pb2.AggregatedConfigSource(),
            resource_api_version=config_source_pb2.V3,
        )
    )
    apply_traffic_policy(out, policy, port)
    _grpc_lb(out)
    limits = out.circuit_breakers.thresholds[0].max_requests.value
    out.ClearField("circuit_breakers")
    out.circuit_breakers.thresholds.add().max_requests.value = limits
    for unread in (
        "typed_extension_protocol_options",
        "upstream_connection_options",
        "outlier_detection",
        "common_lb_config",
        "connect_timeout",
    ):
        out.ClearField(unread)
    if secure and proxyless_tls.wants_mtls(tls, service):
        out.transport_socket.CopyFrom(proxyless_tls.transport_socket(service))
    return prepare(name, out, uses_eds=True)


def _locality(name: str) -> base_pb2.Locality:
    region, zone, subzone = ([*name.split("/"), "", ""])[:3] if name else ("", "", "")
    return base_pb2.Locality(region=region, zone=zone, sub_zone=subzone)


def _lb_endpoint(ep: Endpoint, port: Port) -> ec.LbEndpoint:
    return ec.LbEndpoint(
        endpoint=ec.Endpoint(
            address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(
                    address=ep.address, port_value=ep.port_for(port)
                )
            )
        ),
        health_status=health_check_pb2.HEALTHY if ep.healthy else health_check_pb2.UNHEALTHY,
        load_balancing_weight={"value": ep.weight},
    )


def assignment(name: str, endpoints: Iterable[Endpoint], port: Port) -> PreparedResource:
    by_locality: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        by_locality.setdefault(ep.locality, []).append(ep)
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    for locality in sorted(by_locality):
        eps = by_locality[locality]
        group = cla.endpoints.add(locality=_locality(locality))
        group.lb_endpoints.extend(_lb_endpoint(ep, port) for ep in eps)
        group.load_balancing_weight.value = max(1, sum(ep.weight for ep in eps))
    return prepare(name, cla)


def service_clusters(
    snapshot: MeshSnapshot, service: Service, *, secure: bool = False
) -> list[PreparedResource]:
    """The clusters of one service for proxyless clients: per HTTP port and subset."""
    if not eds_service(service):
        return []
    dr = _dr(snapshot, service)
    out: list[PreparedResource] = []
    for port in service.ports:
        if not port.is_http:
            continue
        for subset, _ in _subsets(dr):
            made = cluster(service, port, subset, dr, secure=secure)
            if made is not None:
                out.append(made)
    return out


def service_assignments(snapshot: MeshSnapshot, service: Service) -> list[PreparedResource]:
    """The assignments of every cluster `service_clusters` may make (a cluster left out for
    its TLS has one nobody asks for)."""
    if not eds_service(service):
        return []
    out: list[PreparedResource] = []
    for port in service.ports:
        if not port.is_http:
            continue
        for subset, labels in _subsets(_dr(snapshot, service)):
            name = outbound_cluster(port.number, subset, service.hostname)
            members = [ep for ep in service.endpoints if ep.matches(labels)]
            out.append(assignment(name, members, port))
    return out
