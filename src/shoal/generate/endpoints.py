"""EDS: the `ClusterLoadAssignment` of every EDS cluster, filtered by subset labels.

An endpoint-only change rebuilds these and nothing else, so it travels as EDS alone. Endpoints
of workloads with a mesh sidecar (`tls_mode` "istio") carry Istio's transport-socket-match
metadata, so callers' automatic mTLS (mtls.py) speaks TLS to them and plaintext to others.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import address_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from shoal.api.destinationrule import DestinationRuleSpec
from shoal.generate.mtls import TLS_MODE_ISTIO, TLS_MODE_KEY, TRANSPORT_SOCKET_MATCH
from shoal.generate.names import outbound_cluster
from shoal.generate.prepared import PreparedResource, prepare
from shoal.generate.telemetry_labels import METADATA_NAMESPACE, endpoint_metadata
from shoal.model import Endpoint, MeshSnapshot, Port, Service


def assignment(
    name: str, service: Service, port: Port, selector: Mapping[str, str]
) -> PreparedResource:
    """The load assignment for one cluster: endpoints of `service` matching `selector`."""
    lb_endpoints = [_lb_endpoint(ep, port) for ep in service.endpoints if ep.matches(selector)]
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    if lb_endpoints:
        cla.endpoints.append(endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=lb_endpoints))
    return prepare(name, cla)


def _lb_endpoint(ep: Endpoint, port: Port) -> endpoint_components_pb2.LbEndpoint:
    out = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(
            address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(
                    address=ep.address, port_value=ep.port_for(port)
                )
            )
        ),
        health_status=health_check_pb2.HEALTHY if ep.healthy else health_check_pb2.UNHEALTHY,
        load_balancing_weight={"value": ep.weight},
    )
    # who the endpoint is, for the caller's metrics (telemetry_labels.py)
    out.metadata.filter_metadata[METADATA_NAMESPACE].update(endpoint_metadata(ep))
    if ep.tls_mode == TLS_MODE_ISTIO:
        # selects the cluster's mTLS transport socket (mtls.py, automatic mTLS)
        out.metadata.filter_metadata[TRANSPORT_SOCKET_MATCH].update({TLS_MODE_KEY: TLS_MODE_ISTIO})
    return out


def empty_assignment(name: str) -> PreparedResource:
    """Answer for an EDS name shoal does not know: without it the cluster warms forever
    (kept per generation by `ConfigGenerator.missing`, not process-wide)."""
    return prepare(name, endpoint_pb2.ClusterLoadAssignment(cluster_name=name))


def service_assignments(snapshot: MeshSnapshot, service: Service) -> list[PreparedResource]:
    """Assignments for every EDS cluster of one service (see `clusters.service_clusters`)."""
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return []
    if service.resolution == "NONE" and not service.endpoints:
        return []
    dr_res = snapshot.dr_by_host.get(service.hostname)
    dr = (
        dr_res.spec if dr_res is not None and isinstance(dr_res.spec, DestinationRuleSpec) else None
    )
    out = []
    for port in service.ports:
        out.append(
            assignment(outbound_cluster(port.number, "", service.hostname), service, port, {})
        )
        if dr is not None:
            out.extend(
                assignment(
                    outbound_cluster(port.number, s.name, service.hostname), service, port, s.labels
                )
                for s in dr.subsets
            )
    return out
