"""A node proxy's resources: every local pod's loopback-sidecar config, inside its netns.

One Envoy serves every pod of a host (`proxy: node`, Istio ambient's shape with Envoy in
ztunnel's place). Each pod's config is what its own loopback (`INTERCEPTION_MODE NONE`)
sidecar would get -- so AuthorizationPolicy, PeerAuthentication and routing give the same
answers as in sidecar mode -- rewritten so the pods cannot meet inside the shared Envoy:

- listeners, route tables and clusters are renamed `<pod>.<namespace>~<name>`; references
  (a route's cluster, a listener's RDS name and tcp_proxy cluster, make-before-break refs)
  follow. Connection pools are therefore split per pod, so never shared across identities:
  a pod's request can only leave on a connection that presented its own certificate.
  (Per pod is stricter than per identity: pods of one service account could share pools.)
- listener addresses get `network_namespace_filepath`: Envoy opens them inside the pod's
  network namespace, where the app reaches them on 127.0.0.1 (Envoy 1.40 does this for
  listeners and for `upstream_bind_config.source_address`, not for endpoints).
- the inbound cluster (the app on 127.0.0.1) binds its source inside the pod's namespace,
  so its connections are made from the pod's loopback.
- the SDS certificate `default` becomes the pod's identity's secret (`identity_secret`), one
  per local service account, which the node agent serves; `ROOTCA` stays shared.
- EDS assignments are renamed with their clusters (one copy per pod): the xDS stream's
  warming and make-before-break bookkeeping holds a cluster's EDS name to be its own name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import any_pb2, symbol_database
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from shoal.generate.mtls import CERT_SECRET
from shoal.generate.prepared import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    PreparedResource,
    prepare,
    unpack,
)
from shoal.generate.resourceset import ResourceSet
from shoal.model.nodepods import NodePod

SEPARATOR = "~"
_RDS = hcm_pb2.Rds.DESCRIPTOR.full_name
_ANY = any_pb2.Any.DESCRIPTOR.full_name


def identity_secret(namespace: str, service_account: str) -> str:
    """The SDS name of one local identity's certificate on a node proxy: its SPIFFE id."""
    return f"spiffe://cluster.local/ns/{namespace}/sa/{service_account}"


def pod_name(pod: NodePod, name: str) -> str:
    return f"{pod.key}{SEPARATOR}{name}"


class _Rewrite:
    """Renames one pod's cluster and route names and its certificate, in any message."""

    def __init__(self, pod: NodePod, clusters: Iterable[str], routes: Iterable[str]) -> None:
        self.clusters = {n: pod_name(pod, n) for n in clusters}
        self.routes = {n: pod_name(pod, n) for n in routes}
        self.secret = identity_secret(pod.proxy.namespace, pod.proxy.service_account)

    def refs(self, refs: frozenset[str]) -> frozenset[str]:
        return frozenset(self.clusters.get(n, n) for n in refs)

    def message(self, msg: Message) -> None:
        name = msg.DESCRIPTOR.full_name
        if name == _ANY:
            self._any(msg)  # type: ignore[arg-type]
            return
        if isinstance(msg, secret_pb2.SdsSecretConfig) and msg.name == CERT_SECRET:
            msg.name = self.secret
            return
        for field, value in msg.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                entry = field.message_type
                assert entry is not None
                if entry.GetOptions().map_entry:
                    entry_value = entry.fields_by_name["value"]
                    if entry_value.type == FieldDescriptor.TYPE_MESSAGE:
                        for item in value.values():
                            self.message(item)
                elif field.is_repeated:
                    for item in value:
                        self.message(item)
                else:
                    self.message(value)
            elif field.type == FieldDescriptor.TYPE_STRING:
                renames = self.routes if name == _RDS else self.clusters
                if field.is_repeated:
                    for i, item in enumerate(value):
                        if item in renames:
                            value[i] = renames[item]
                elif value in renames:
                    setattr(msg, field.name, renames[value])

    def _any(self, wrapped: any_pb2.Any) -> None:
        full_name = wrapped.type_url.rsplit("/", 1)[-1]
        try:
            cls = symbol_database.Default().GetSymbol(full_name)
        except KeyError:
            return  # a type no generator here made: nothing of ours inside
        inner = cls.FromString(wrapped.value)
        self.message(inner)
        wrapped.value = inner.SerializeToString(deterministic=True)


def _in_netns(address: address_pb2.Address, netns: str) -> None:
    if address.HasField("socket_address"):
        address.socket_address.network_namespace_filepath = netns


def _listener(res: PreparedResource, pod: NodePod, rw: _Rewrite) -> PreparedResource:
    msg = unpack(res, listener_pb2.Listener())
    assert isinstance(msg, listener_pb2.Listener)
    rw.message(msg)
    msg.name = pod_name(pod, res.name)
    _in_netns(msg.address, pod.netns)
    for extra in msg.additional_addresses:
        _in_netns(extra.address, pod.netns)
    return prepare(msg.name, msg, rw.refs(res.refs), res.uses_eds)


def _cluster(res: PreparedResource, pod: NodePod, rw: _Rewrite) -> PreparedResource:
    msg = unpack(res, cluster_pb2.Cluster())
    assert isinstance(msg, cluster_pb2.Cluster)
    rw.message(msg)  # renames eds_cluster_config.service_name (the cluster's own) too
    msg.name = pod_name(pod, res.name)
    if msg.HasField("load_assignment"):
        msg.load_assignment.cluster_name = msg.name
    if res.name.startswith("inbound|"):
        # the app listens on the pod's loopback: connect from inside its namespace
        source = msg.upstream_bind_config.source_address
        source.address, source.port_value = "127.0.0.1", 0
        source.network_namespace_filepath = pod.netns
    return prepare(msg.name, msg, rw.refs(res.refs), res.uses_eds)


def _assignment(res: PreparedResource, pod: NodePod) -> PreparedResource:
    msg = unpack(res, endpoint_pb2.ClusterLoadAssignment())
    assert isinstance(msg, endpoint_pb2.ClusterLoadAssignment)
    msg.cluster_name = pod_name(pod, res.name)
    return prepare(msg.cluster_name, msg, res.refs, res.uses_eds)


def _route(res: PreparedResource, pod: NodePod, rw: _Rewrite) -> PreparedResource:
    msg = unpack(res, route_pb2.RouteConfiguration())
    assert isinstance(msg, route_pb2.RouteConfiguration)
    rw.message(msg)
    msg.name = pod_name(pod, res.name)
    made = prepare(msg.name, msg, rw.refs(res.refs), res.uses_eds)
    # the assignments it waits for are renamed like their clusters
    return PreparedResource(
        name=made.name,
        type_url=made.type_url,
        any_bytes=made.any_bytes,
        version=made.version,
        refs=made.refs,
        uses_eds=made.uses_eds,
        needs_endpoints=frozenset(pod_name(pod, n) for n in res.needs_endpoints),
        route_filters=res.route_filters,
    )


PodMaps = Mapping[str, Mapping[str, PreparedResource]]


def node_maps(pods: Iterable[tuple[NodePod, PodMaps]]) -> dict[str, ResourceSet]:
    """Every pod's sidecar maps (by type URL), rewritten for one node proxy and merged."""
    out: dict[str, list[PreparedResource]] = {CLUSTER: [], ENDPOINT: [], LISTENER: [], ROUTE: []}
    rewrite: dict[str, Callable[[PreparedResource, NodePod, _Rewrite], PreparedResource]] = {
        CLUSTER: _cluster,
        LISTENER: _listener,
        ROUTE: _route,
    }
    for pod, maps in pods:
        rw = _Rewrite(pod, maps.get(CLUSTER, {}), maps.get(ROUTE, {}))
        for type_url, make in rewrite.items():
            out[type_url].extend(make(r, pod, rw) for r in maps.get(type_url, {}).values())
        out[ENDPOINT].extend(_assignment(r, pod) for r in maps.get(ENDPOINT, {}).values())
    return {t: ResourceSet.of(rs) for t, rs in out.items()}
