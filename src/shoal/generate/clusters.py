"""Outbound clusters: one per service port, plus one per DestinationRule subset.

The DestinationRule's traffic policy (merged for the port and subset) is applied by
clusterpolicy.py, its `tls` (or automatic mTLS, for proxies with SDS) by mtls.py.

Cluster bodies depend only on the service, its DestinationRule, the subset and whether the
proxy is secure (has SDS), so they are generated at most twice per snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from shoal.api.destinationrule import DestinationRuleSpec
from shoal.generate.clusterpolicy import apply_traffic_policy
from shoal.generate.mtls import apply_client_tls, h2_to_sidecars
from shoal.generate.names import inbound_cluster, outbound_cluster
from shoal.generate.prepared import PreparedResource, prepare
from shoal.generate.telemetry_labels import METADATA_NAMESPACE, cluster_metadata
from shoal.model import Credential, MeshSnapshot, Port, Service

# Istio's default connect timeout for outbound clusters.
CONNECT_TIMEOUT_S = 10


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _assignment(name: str, targets: list[tuple[str, int]]) -> endpoint_pb2.ClusterLoadAssignment:
    """An inline load assignment (DNS and static clusters carry their endpoints themselves)."""
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(
                            address=address_pb2.Address(
                                socket_address=address_pb2.SocketAddress(address=host, port_value=p)
                            )
                        )
                    )
                    for host, p in targets
                ]
            )
        ],
    )


def _dns_assignment(name: str, service: Service, port: Port) -> endpoint_pb2.ClusterLoadAssignment:
    targets = [(e.address, e.port_for(port)) for e in service.endpoints] or [
        (service.hostname, port.target_port or port.number)
    ]
    return _assignment(name, targets)


def outbound(
    service: Service,
    port: Port,
    subset: str,
    dr: DestinationRuleSpec | None,
    *,
    secure: bool = False,
    files: Mapping[str, str] | None = None,
    credentials: Mapping[str, Credential] | None = None,
) -> PreparedResource:
    """The cluster for one (service, port, subset), for a proxy with SDS if `secure`."""
    name = outbound_cluster(port.number, subset, service.hostname)
    cluster = cluster_pb2.Cluster(name=name)
    cluster.connect_timeout.FromSeconds(CONNECT_TIMEOUT_S)
    # the destination service of the caller's metrics (telemetry_labels.py)
    cluster.metadata.filter_metadata[METADATA_NAMESPACE].update(cluster_metadata(service))
    policy = dr.policy_for(port.number, subset) if dr else None
    mesh_mtls = secure and service.location == "MESH_INTERNAL"
    tls = policy.tls if policy else None
    apply_traffic_policy(
        cluster, policy, port, mesh_h2=h2_to_sidecars(tls, secure=mesh_mtls, service=service)
    )
    apply_client_tls(
        cluster,
        tls,
        secure=mesh_mtls,
        service=service,
        port=port.number,
        subset=subset,
        files=files or {},
        credentials=credentials,
    )
    uses_eds = False
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        cluster.type = (
            cluster_pb2.Cluster.STRICT_DNS
            if service.resolution == "DNS"
            else cluster_pb2.Cluster.LOGICAL_DNS
        )
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
        cluster.load_assignment.CopyFrom(_dns_assignment(name, service, port))
    elif service.resolution == "NONE" and not service.endpoints:
        # Passthrough: send to wherever the caller was going (needs traffic capture).
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    else:
        cluster.type = cluster_pb2.Cluster.EDS
        cluster.eds_cluster_config.eds_config.CopyFrom(_ads())
        cluster.eds_cluster_config.service_name = name
        uses_eds = True
    return prepare(name, cluster, uses_eds=uses_eds)


def inbound(app_port: int) -> PreparedResource:
    """The cluster a sidecar's inbound listener forwards to: the app on loopback."""
    name = inbound_cluster(app_port)
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.FromSeconds(CONNECT_TIMEOUT_S)
    cluster.load_assignment.CopyFrom(_assignment(name, [("127.0.0.1", app_port)]))
    return prepare(name, cluster)


def service_clusters(
    snapshot: MeshSnapshot, service: Service, *, secure: bool = False
) -> list[PreparedResource]:
    """Every outbound cluster of one service: per port, whole service and each subset."""
    dr_res = snapshot.dr_by_host.get(service.hostname)
    dr = (
        dr_res.spec if dr_res is not None and isinstance(dr_res.spec, DestinationRuleSpec) else None
    )
    out = []
    for port in service.ports:
        out.append(
            outbound(
                service,
                port,
                "",
                dr,
                secure=secure,
                files=snapshot.files,
                credentials=snapshot.credentials,
            )
        )
        if dr is not None:
            out.extend(
                outbound(
                    service,
                    port,
                    s.name,
                    dr,
                    secure=secure,
                    files=snapshot.files,
                    credentials=snapshot.credentials,
                )
                for s in dr.subsets
            )
    return out
