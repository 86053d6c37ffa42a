"""The simulated sidecar's protocol: requests it writes, ACK bookkeeping, response parsing."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2, json_format

from loadharness.protocol import (
    CDS,
    EDS,
    LDS,
    RDS,
    Identity,
    ProxyState,
    ResourceCache,
)

IDENT = Identity("sim-3", "ns-1", 20003, 40003)


def _any(msg: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)  # type: ignore[arg-type]
    return packed


def cluster(name: str, eds: bool = True) -> any_pb2.Any:
    kind = cluster_pb2.Cluster.EDS if eds else cluster_pb2.Cluster.STATIC
    return _any(cluster_pb2.Cluster(name=name, type=kind))


def listener(name: str, route: str) -> any_pb2.Any:
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix=name)
    hcm.rds.route_config_name = route
    filt = listener_components_pb2.Filter(
        name="envoy.filters.network.http_connection_manager", typed_config=_any(hcm)
    )
    chain = listener_components_pb2.FilterChain(filters=[filt])
    return _any(listener_pb2.Listener(name=name, filter_chains=[chain]))


def assignment(name: str, port: int) -> any_pb2.Any:
    sock = address_pb2.SocketAddress(address="10.0.0.1", port_value=port)
    lb = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=address_pb2.Address(socket_address=sock))
    )
    locality = endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[lb])
    return _any(endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=[locality]))


def sotw(
    type_url: str, version: str, nonce: str, *res: any_pb2.Any
) -> discovery_pb2.DiscoveryResponse:
    return discovery_pb2.DiscoveryResponse(
        type_url=type_url, version_info=version, nonce=nonce, resources=list(res)
    )


def test_identity_is_an_istio_style_none_mode_sidecar() -> None:
    assert IDENT.node_id == "sidecar~127.0.0.1~sim-3.ns-1~ns-1.svc.cluster.local"
    node = json_format.MessageToDict(IDENT.node())
    meta = node["metadata"]
    assert meta["NAMESPACE"] == "ns-1" and meta["INTERCEPTION_MODE"] == "NONE"
    assert meta["OUTBOUND_PORT"] == "20003" and meta["INBOUND_PORT"] == "40003"
    assert meta["LABELS"] == {"app": "sim-3"}


def test_sotw_acks_and_requests_what_envoy_would() -> None:
    state = ProxyState(IDENT, delta=False, cache=ResourceCache())
    (first,) = state.initial()
    assert first.type_url == CDS and first.node.id == IDENT.node_id and not first.resource_names

    out = state.on_response(sotw(CDS, "v1", "n1", cluster("a"), cluster("b", eds=False)), 1.0)
    ack, eds, lds = out
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (CDS, "v1", "n1")
    assert not ack.HasField("node"), "only the first request carries the node"
    assert eds.type_url == EDS and list(eds.resource_names) == ["a"]
    assert lds.type_url == LDS and not lds.resource_names

    out = state.on_response(sotw(LDS, "l1", "n2", listener("outbound", "http.80")), 2.0)
    assert [(r.type_url, list(r.resource_names)) for r in out] == [(LDS, []), (RDS, ["http.80"])]
    (ack,) = state.on_response(sotw(EDS, "e1", "n3", assignment("a", 8080)), 3.0)
    assert (ack.version_info, ack.response_nonce, list(ack.resource_names)) == ("e1", "n3", ["a"])
    assert not state.acked_all()
    route = _any(route_pb2.RouteConfiguration(name="http.80"))
    state.on_response(sotw(RDS, "r1", "n4", route), 4.0)
    assert state.acked_all()
    assert state.holds(CDS) == {"a": "v1", "b": "v1"}
    assert state.holds(EDS) == {"a": "e1"}
    assert state.received_since(2.5) == {"eds": 1, "rds": 1}


def test_sotw_unchanged_clusters_ask_for_nothing_new() -> None:
    state = ProxyState(IDENT, delta=False, cache=ResourceCache())
    state.on_response(sotw(CDS, "v1", "n1", cluster("a")), 1.0)
    out = state.on_response(sotw(CDS, "v2", "n2", cluster("a")), 2.0)
    assert [r.type_url for r in out] == [CDS], "same EDS names, LDS already requested"
    out = state.on_response(sotw(CDS, "v3", "n3", cluster("c")), 3.0)
    assert [(r.type_url, list(r.resource_names)) for r in out] == [(CDS, []), (EDS, ["c"])]
    assert out[1].response_nonce == "" and out[1].version_info == ""


def test_ack_bookkeeping_by_time_version_and_endpoint_port() -> None:
    state = ProxyState(IDENT, delta=False, cache=ResourceCache(), watch={"a"})
    state.on_response(sotw(CDS, "v1", "n1", cluster("a")), 1.0)
    state.on_response(sotw(EDS, "e1", "n2", assignment("a", 8080)), 2.0)
    state.on_response(sotw(EDS, "e2", "n3", assignment("a", 9001)), 5.0)
    rec = state.types[EDS]
    assert rec.first_ack_after(1.5) == 2.0 and rec.first_ack_after(3.0) == 5.0
    assert rec.first_ack_after(6.0) is None
    assert rec.ack_of_version("e2") == 5.0
    assert rec.ack_of_port("a", 9001, 0.0) == 5.0 and rec.ack_of_port("a", 9002, 0.0) is None
    assert [ev.resources for ev in rec.events] == [1, 1]


def test_delta_subscribes_and_unsubscribes_by_difference() -> None:
    state = ProxyState(IDENT, delta=True, cache=ResourceCache())
    (first,) = state.initial()
    assert isinstance(first, discovery_pb2.DeltaDiscoveryRequest) and first.node.id
    resources = [discovery_pb2.Resource(name=n, version=f"{n}1", resource=cluster(n)) for n in "ab"]
    resp = discovery_pb2.DeltaDiscoveryResponse(
        type_url=CDS, system_version_info="s1", nonce="n1", resources=resources
    )
    ack, eds, lds = state.on_response(resp, 1.0)
    assert ack.response_nonce == "n1" and not ack.resource_names_subscribe
    assert list(eds.resource_names_subscribe) == ["a", "b"] and lds.type_url == LDS
    removal = discovery_pb2.DeltaDiscoveryResponse(
        type_url=CDS, system_version_info="s2", nonce="n2", removed_resources=["a"]
    )
    ack, eds = state.on_response(removal, 2.0)
    assert list(eds.resource_names_unsubscribe) == ["a"] and not eds.resource_names_subscribe
    assert state.holds(CDS) == {"b": "b1"}


def test_each_distinct_resource_is_parsed_once() -> None:
    cache = ResourceCache()
    states = [
        ProxyState(Identity(f"p{i}", "default", 1 + i, 2 + i), delta=False, cache=cache)
        for i in range(50)
    ]
    resp = sotw(CDS, "v1", "n1", cluster("a"), cluster("b"))
    for state in states:
        state.on_response(resp, 1.0)
    assert cache.parsed == 2
    assert states[0].types[CDS].names is states[49].types[CDS].names, "interned across proxies"


def test_identical_responses_are_parsed_once_whatever_their_nonce() -> None:
    cache = ResourceCache()
    states = [
        ProxyState(Identity(f"p{i}", "default", 1, 2), delta=False, cache=cache) for i in "ab"
    ]
    for nonce, state in zip(("7", "8"), states, strict=True):
        resp = sotw(CDS, "v1", nonce, cluster("a"), cluster("b", eds=False))
        state.on_response(resp, 1.0, raw=resp.SerializeToString())
    assert cache.responses_parsed == 1
    other = sotw(CDS, "v2", "9", cluster("a"))
    states[0].on_response(other, 2.0, raw=other.SerializeToString())
    assert cache.responses_parsed == 2 and states[0].holds(CDS) == {"a": "v2"}
    assert states[1].types[EDS].subscribed == {"a"}
