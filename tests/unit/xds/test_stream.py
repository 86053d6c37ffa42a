"""The sans-IO xDS stream protocol, driven directly: no network, no grpc."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ROUTE, PreparedResource, ProxyView
from shoal.generate.resourceset import ResourceSet
from shoal.xds.messages import Request, Response
from shoal.xds.stream import StreamProtocol


def res(
    type_url: str, name: str, version: str = "1", refs: tuple[str, ...] = (), eds: bool = False
) -> PreparedResource:
    return PreparedResource(
        name=name,
        type_url=type_url,
        any_bytes=f"{name}:{version}".encode(),
        version=version,
        refs=frozenset(refs),
        uses_eds=eds,
    )


def view(
    clusters: dict[str, str], routes_to: tuple[str, ...], route_version: str = "1", eps: str = "1"
) -> ProxyView:
    cds = {n: res(CLUSTER, n, v, eds=True) for n, v in clusters.items()}
    eds = {n: res(ENDPOINT, n, eps) for n in clusters}
    lds = {"out": res(LISTENER, "out", "1", refs=())}
    rds = {"outbound_http": res(ROUTE, "outbound_http", route_version, refs=routes_to)}
    return ProxyView(
        version="s",
        resources=MappingProxyType({CLUSTER: cds, ENDPOINT: eds, LISTENER: lds, ROUTE: rds}),
    )


def missing(type_url: str, name: str) -> PreparedResource | None:
    return res(ENDPOINT, name, "empty") if type_url == ENDPOINT else None


def proto(delta: bool = False) -> StreamProtocol:
    return StreamProtocol(delta=delta, boot_id="boot", missing=missing)


def only(responses: list[Response], type_url: str) -> Response:
    assert [r.type_url for r in responses] == [type_url], responses
    return responses[0]


def ack(p: StreamProtocol, r: Response, names: tuple[str, ...] = ()) -> list[Response]:
    if p.delta:
        return p.on_request(Request(type_url=r.type_url, nonce=r.nonce))
    return p.on_request(Request(type_url=r.type_url, nonce=r.nonce, version=r.version, names=names))


def connect_sotw(p: StreamProtocol, v: ProxyView) -> None:
    """Drive a full initial sync the way Envoy does: CDS, EDS, LDS, RDS, all ACKed."""
    p.on_view(v)
    cds = only(p.on_request(Request(type_url=CLUSTER)), CLUSTER)
    lds = only(p.on_request(Request(type_url=LISTENER)), LISTENER)
    # the route names cluster a, which is still warming: it waits for a's endpoints
    assert p.on_request(Request(type_url=ROUTE, names=("outbound_http",))) == []
    names = tuple(sorted(v.of(CLUSTER)))
    # Envoy may ask for endpoints before it ACKs the clusters (it ACKs them once warm)
    eds, rds = p.on_request(Request(type_url=ENDPOINT, names=names))
    assert (eds.type_url, rds.type_url) == (ENDPOINT, ROUTE)
    assert ack(p, cds) == []
    assert ack(p, lds) == []
    assert ack(p, eds, names) == []
    assert ack(p, rds, ("outbound_http",)) == []


def test_initial_sync_orders_clusters_before_listeners_and_routes() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    st = p.status()
    assert all(s["sent"] == s["acked"] and s["nack"] is None for s in st.values())


def test_route_to_new_cluster_waits_until_cluster_and_endpoints_are_sent() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    cds = only(p.on_view(view({"a": "1", "b": "1"}, ("a", "b"), route_version="2")), CLUSTER)
    # b is not subscribed yet: the route naming it waits, whatever happens to the CDS ACK
    assert ack(p, cds) == []
    last = p.types[ENDPOINT].last_nonce
    eds, rds = p.on_request(Request(type_url=ENDPOINT, nonce=last, names=("a", "b")))
    # Envoy keeps a's assignment: only the new one travels
    assert {r.name for r in eds.resources} == {"b"}
    assert rds.type_url == ROUTE and rds.resources[0].version == "2"


def test_clusters_acked_only_once_warm_do_not_deadlock() -> None:
    p = proto()
    p.on_view(view({"a": "1"}, ("a",)))
    only(p.on_request(Request(type_url=CLUSTER)), CLUSTER)
    assert p.on_request(Request(type_url=ROUTE, names=("outbound_http",))) == []
    # no CDS ACK yet: the EDS request is still answered, and the route follows it
    out = p.on_request(Request(type_url=ENDPOINT, names=("a",)))
    assert [r.type_url for r in out] == [ENDPOINT, ROUTE]


def test_eds_subscription_crossing_a_response_is_answered_on_the_ack() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    eds = only(p.on_view(view({"a": "1"}, ("a",), eps="2")), ENDPOINT)
    # Envoy subscribes to b with the previous nonce while our response is in flight: stale
    assert p.on_request(Request(type_url=ENDPOINT, nonce="0", names=("a", "b"))) == []
    # its ACK of the newer response carries the full subscription, which is then answered
    again = only(ack(p, eds, ("a", "b")), ENDPOINT)
    assert {r.name for r in again.resources} == {"b"}


def test_removed_cluster_is_kept_until_routes_stop_naming_it() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1", "b": "1"}, ("a", "b")))
    out = p.on_view(view({"a": "1"}, ("a",), route_version="2"))
    # b is still named by the route Envoy holds, so CDS does not change: the route goes first
    rds = only(out, ROUTE)
    cds = only(ack(p, rds, ("outbound_http",)), CLUSTER)
    assert {r.name for r in cds.resources} == {"a"}


def test_nacked_version_is_never_resent() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    cds, _ = p.on_view(view({"a": "bad"}, ("a",)))
    out = p.on_request(
        Request(type_url=CLUSTER, nonce=cds.nonce, version="old", error="invalid cluster")
    )
    assert out == []
    assert p.status()[CLUSTER]["nack"] == "invalid cluster"
    # the same content again (e.g. an unrelated push) is not resent
    assert p.on_view(view({"a": "bad"}, ("a",))) == []
    # new content is sent, and its ACK clears the error
    fixed = p.on_view(view({"a": "2"}, ("a",)))[0]
    assert fixed.version != cds.version
    ack(p, fixed)
    assert p.status()[CLUSTER]["nack"] is None


@pytest.mark.parametrize("delta", [False, True])
def test_a_nack_stops_being_current_when_config_goes_back_to_what_envoy_holds(
    delta: bool,
) -> None:
    p = StreamProtocol(delta=delta, boot_id="boot", missing=missing, clock=lambda: 1234.5)
    good = view({"a": "1"}, ("a",))
    (connect_delta if delta else connect_sotw)(p, good)
    acked = p.status()[CLUSTER]["acked"]
    bad = next(r for r in p.on_view(view({"a": "bad"}, ("a",))) if r.type_url == CLUSTER)
    p.on_request(Request(type_url=CLUSTER, nonce=bad.nonce, version="old", error="bad cluster"))
    assert p.status()[CLUSTER]["nack"] == "bad cluster"

    # Reverted: Envoy already holds this, yet it is answered so that Envoy's last answer for
    # CDS becomes an ACK of it. Nothing new for Envoy: the same clusters (sotw), no change
    # (delta); a fresh version, so the ACK tells which answer it is.
    confirm = only(p.on_view(good), CLUSTER)
    if delta:
        assert confirm.resources == () and confirm.removed == ()
    else:
        assert [(r.name, r.version) for r in confirm.resources] == [("a", "1")]
    assert confirm.version != bad.version
    assert confirm.cache_key is None  # not a message shared with streams that did not NACK
    # until Envoy answers, its last answer is still the NACK
    assert p.status()[CLUSTER]["nack"] == "bad cluster"
    assert ack(p, confirm) == []
    status = p.status()[CLUSTER]
    assert status["nack"] is None
    assert status["sent"] == status["acked"] and str(status["acked"]).startswith(str(acked))
    # the history stays
    assert status["last_nack"] == {"version": bad.version, "error": "bad cluster", "at": 1234.5}
    assert status["nacks"] == 1
    # and nothing more is sent while nothing changes
    assert p.on_view(good) == []


def test_a_nack_stays_current_while_the_refused_config_is_still_wanted() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    cds, _ = p.on_view(view({"a": "bad"}, ("a",)))
    p.on_request(Request(type_url=CLUSTER, nonce=cds.nonce, version="old", error="bad"))
    assert p.on_view(view({"a": "bad"}, ("a",))) == []
    assert p.status()[CLUSTER]["nack"] == "bad"
    assert p.status()[CLUSTER]["last_nack"]["error"] == "bad"  # type: ignore[index]


def test_a_nack_of_endpoints_heals_with_the_whole_set_when_reverted() -> None:
    # sotw EDS normally carries only what changed; a confirmation with no change is the
    # whole set (a response with no assignment at all would tell Envoy nothing)
    p = proto()
    connect_sotw(p, view({"a": "1", "b": "1"}, ("a", "b")))
    eds = only(p.on_view(view({"a": "1", "b": "1"}, ("a", "b"), eps="bad")), ENDPOINT)
    p.on_request(
        Request(type_url=ENDPOINT, nonce=eds.nonce, names=("a", "b"), error="bad endpoints")
    )
    confirm = only(p.on_view(view({"a": "1", "b": "1"}, ("a", "b"))), ENDPOINT)
    assert sorted(r.name for r in confirm.resources) == ["a", "b"]
    assert ack(p, confirm, ("a", "b")) == []
    assert p.status()[ENDPOINT]["nack"] is None
    assert p.status()[ENDPOINT]["nacks"] == 1


def test_stale_nonce_is_ignored_in_state_of_the_world() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    cds = p.on_view(view({"a": "2"}, ("a",)))[0]
    assert p.on_request(Request(type_url=CLUSTER, nonce="stale", error="old")) == []
    assert p.status()[CLUSTER]["nack"] is None
    assert p.types[CLUSTER].inflight is not None and p.types[CLUSTER].inflight.nonce == cds.nonce


def test_versions_never_repeat_across_restarts() -> None:
    v = view({"a": "1"}, ("a",))
    one, two = proto(), StreamProtocol(delta=False, boot_id="boot2", missing=missing)
    one.on_view(v)
    two.on_view(v)
    a = only(one.on_request(Request(type_url=CLUSTER)), CLUSTER)
    b = only(two.on_request(Request(type_url=CLUSTER)), CLUSTER)
    assert a.version != b.version


def test_unknown_eds_name_is_answered_with_an_empty_assignment() -> None:
    p = proto()
    p.on_view(view({"a": "1"}, ("a",)))
    r = only(p.on_request(Request(type_url=ENDPOINT, names=("ghost",))), ENDPOINT)
    assert [x.version for x in r.resources] == ["empty"]


def test_endpoint_change_pushes_eds_only() -> None:
    p = proto()
    connect_sotw(p, view({"a": "1"}, ("a",)))
    eds = only(p.on_view(view({"a": "1"}, ("a",), eps="2")), ENDPOINT)
    assert [r.version for r in eds.resources] == ["2"]


def test_state_of_the_world_eds_carries_only_the_changed_assignments() -> None:
    clusters = {"a": "1", "b": "1", "c": "1"}
    v1 = view(clusters, ("a",))
    p = proto()
    connect_sotw(p, v1)
    eds = dict(v1.of(ENDPOINT))
    eds["b"] = res(ENDPOINT, "b", "2")
    v2 = ProxyView(version="s2", resources=MappingProxyType({**v1.resources, ENDPOINT: eds}))
    out = only(p.on_view(v2), ENDPOINT)
    assert [r.name for r in out.resources] == ["b"]
    # the version still names the whole set Envoy now holds
    assert out.version != p.types[ENDPOINT].acked_version


# ---------------------------------------------------------------- delta


def connect_delta(p: StreamProtocol, v: ProxyView) -> None:
    p.on_view(v)
    cds = only(p.on_request(Request(type_url=CLUSTER)), CLUSTER)
    lds = only(p.on_request(Request(type_url=LISTENER)), LISTENER)
    assert p.on_request(Request(type_url=ROUTE, subscribe=("outbound_http",))) == []
    out = p.on_request(Request(type_url=ENDPOINT, subscribe=tuple(v.of(CLUSTER))))
    assert [r.type_url for r in out] == [ENDPOINT, ROUTE]
    for r in (cds, lds, *out):
        assert ack(p, r) == []


def test_delta_sends_only_changes_and_removals() -> None:
    p = proto(delta=True)
    connect_delta(p, view({"a": "1", "b": "1", "c": "1"}, ("a",)))
    cds, eds = p.on_view(view({"a": "2", "b": "1"}, ("a",)))
    assert [r.name for r in eds.resources] == ["a"]  # a changed, so it warms: EDS again
    assert [r.name for r in cds.resources] == ["a"]
    assert cds.removed == ("c",)


def test_delta_subscription_changes_are_honoured_with_a_stale_nonce() -> None:
    p = proto(delta=True)
    connect_delta(p, view({"a": "1"}, ("a",)))
    eds = p.on_request(Request(type_url=ENDPOINT, nonce="stale", subscribe=("ghost",)))
    assert [r.name for r in only(eds, ENDPOINT).resources] == ["ghost"]


def test_delta_reconnect_sends_nothing_when_envoy_is_current() -> None:
    v = view({"a": "1"}, ("a",))
    first = proto(delta=True)
    connect_delta(first, v)
    held = first.types[CLUSTER].versions_held()
    assert held == {"a": v.of(CLUSTER)["a"].version}
    again = StreamProtocol(delta=True, boot_id="boot2", missing=missing)
    again.on_view(v)
    r = only(again.on_request(Request(type_url=CLUSTER, initial_versions=held)), CLUSTER)
    assert r.resources == () and r.removed == ()


def test_delta_reconnect_removes_what_was_deleted_meanwhile() -> None:
    again = StreamProtocol(delta=True, boot_id="boot2", missing=missing)
    again.on_view(view({"a": "1"}, ("a",)))
    r = only(
        again.on_request(Request(type_url=CLUSTER, initial_versions={"a": "1", "gone": "1"})),
        CLUSTER,
    )
    assert r.removed == ("gone",)


@pytest.mark.parametrize("delta", [False, True])
def test_changed_cluster_gets_eds_again_even_if_endpoints_are_equal(delta: bool) -> None:
    p = proto(delta=delta)
    (connect_delta if delta else connect_sotw)(p, view({"a": "1"}, ("a",)))
    out = p.on_view(view({"a": "2"}, ("a",)))
    assert [r.type_url for r in out] == [CLUSTER, ENDPOINT]
    assert [r.name for r in out[1].resources] == ["a"]


def test_streams_share_the_map_and_its_encoding_when_they_want_all_of_it() -> None:
    from shoal.xds import wire

    v = view({"a": "1", "b": "1"}, ("a", "b"))
    one, two = proto(), proto()
    for p in (one, two):
        p.on_view(v)
    r1 = only(one.on_request(Request(type_url=CLUSTER)), CLUSTER)
    r2 = only(two.on_request(Request(type_url=CLUSTER)), CLUSTER)
    assert r1.cache_key == (v.of(CLUSTER),) and r2.cache_key == (v.of(CLUSTER),)
    encoder = wire.Encoder()
    encoder.sotw(r1)
    encoder.sotw(r2)
    assert encoder.messages.hits == 1  # the second stream reused the first one's bytes
    assert encoder.sotw(r1) is encoder.sotw(r2)


def shared_view(names: list[str], version: str = "1") -> ProxyView:
    cds = ResourceSet.of(res(CLUSTER, n, "1", eds=True) for n in names)
    eds = ResourceSet.of(res(ENDPOINT, n, version) for n in names)
    return ProxyView(version="s", resources=MappingProxyType({CLUSTER: cds, ENDPOINT: eds}))


def eds_set(v: ProxyView) -> ResourceSet:
    found = v.of(ENDPOINT)
    assert isinstance(found, ResourceSet)
    return found


@pytest.mark.parametrize("delta", [False, True])
def test_a_stream_keeps_the_views_names_not_the_requests(delta: bool) -> None:
    # A thousand streams each subscribed to thousands of names must not each hold a copy of
    # them: the subscription becomes the view's own shared set (the list Envoy repeats in
    # every ACK is shared by the server, see test_acknames).
    names = [f"outbound|80||svc-{i}.default.svc.cluster.local" for i in range(50)]
    v = shared_view(names)
    p = proto(delta=delta)
    p.on_view(v)
    copies = tuple("".join(n) for n in reversed(names))  # equal, not the same objects
    assert all(c is not n for c, n in zip(copies, reversed(names), strict=True))
    if delta:
        p.on_request(Request(type_url=ENDPOINT, subscribe=copies))
    else:
        r = only(p.on_request(Request(type_url=ENDPOINT, names=copies)), ENDPOINT)
        p.on_request(Request(type_url=ENDPOINT, nonce=r.nonce, version=r.version, names=copies))
    ts = p.types[ENDPOINT]
    assert ts.names is eds_set(v).names()


def test_the_next_snapshot_keeps_the_same_name_set_when_names_are_unchanged() -> None:
    names = ["a", "b"]
    first = shared_view(names)
    held = eds_set(first).names()  # as a stream asks for them
    second = ResourceSet.of(res(ENDPOINT, n, "2") for n in names)
    second.share_names(eds_set(first))
    assert second.names() is held
    third = ResourceSet.of(res(ENDPOINT, n, "2") for n in ["a", "c"])
    third.share_names(second)
    assert third.names() == {"a", "c"}


def test_delta_streams_share_one_message_for_the_same_change_of_a_shared_map() -> None:
    from shoal.xds import wire

    names = ["a", "b"]
    before, after = shared_view(names), shared_view(names, version="2")
    streams = [proto(delta=True) for _ in range(2)]
    for p in streams:
        p.on_view(before)
        cds = only(p.on_request(Request(type_url=CLUSTER)), CLUSTER)
        eds = only(p.on_request(Request(type_url=ENDPOINT, subscribe=tuple(names))), ENDPOINT)
        # the first responses of new streams are one message already
        assert cds.cache_key == (before.of(CLUSTER),) and eds.cache_key == (before.of(ENDPOINT),)
        ack(p, cds)
        ack(p, eds)
    one, two = (only(p.on_view(after), ENDPOINT) for p in streams)
    assert one.cache_key == (before.of(ENDPOINT), after.of(ENDPOINT)) == two.cache_key
    assert [r.version for r in one.resources] == ["2", "2"] and one.nonce == two.nonce
    encoder = wire.Encoder()
    assert encoder.delta(one) is encoder.delta(two)


# -- weighted destinations without endpoints (generate/emptydest.py) ---------------------------


def split_view(eps: dict[str, str], needs: tuple[str, ...], route_version: str) -> ProxyView:
    """Clusters a and b; the route splits between them and relies on `needs` having endpoints."""
    cds = {n: res(CLUSTER, n, "1", eds=True) for n in ("a", "b")}
    eds = {n: res(ENDPOINT, n, v) for n, v in eps.items()}
    lds = {"out": res(LISTENER, "out", "1")}
    rds = {
        "outbound_http": PreparedResource(
            name="outbound_http",
            type_url=ROUTE,
            any_bytes=route_version.encode(),
            version=route_version,
            refs=frozenset({"a", "b"}),
            needs_endpoints=frozenset(needs),
        )
    }
    return ProxyView(
        version=f"s{route_version}",
        resources=MappingProxyType({CLUSTER: cds, ENDPOINT: eds, LISTENER: lds, ROUTE: rds}),
    )


@pytest.mark.parametrize("delta", [False, True])
def test_a_route_giving_weight_back_waits_for_the_first_endpoint(delta: bool) -> None:
    """b's first endpoint and the route giving b its share arrive in one view while an EDS
    response is still unanswered: the route waits until b's assignment has been sent."""
    p = proto(delta)
    first = split_view({"a": "1", "b": "empty"}, ("a",), "r1")
    (connect_delta if delta else connect_sotw)(p, first)
    eds = only(p.on_view(split_view({"a": "2", "b": "empty"}, ("a",), "r1")), ENDPOINT)
    # b gets an endpoint; EDS is in flight, so only routes could go now: they must not
    assert p.on_view(split_view({"a": "2", "b": "1"}, ("a", "b"), "r2")) == []
    out = ack(p, eds, ("a", "b"))
    assert [r.type_url for r in out] == [ENDPOINT, ROUTE]  # b's endpoint first, then the route
    assert [r.name for r in out[0].resources] == ["b"]


@pytest.mark.parametrize("delta", [False, True])
def test_a_clusters_last_endpoint_leaves_only_after_routes_stop_relying_on_it(
    delta: bool,
) -> None:
    """b loses its last endpoint: the route moving b's share away goes first; b's empty
    assignment only once Envoy has ACKed that route."""
    p = proto(delta)
    (connect_delta if delta else connect_sotw)(
        p, split_view({"a": "1", "b": "1"}, ("a", "b"), "r1")
    )
    rds = only(p.on_view(split_view({"a": "1", "b": "empty"}, ("a",), "r2")), ROUTE)
    out = ack(p, rds, ("outbound_http",))
    eds = only(out, ENDPOINT)
    assert [r.version for r in eds.resources if r.name == "b"] == ["empty"]


def test_ordinary_endpoint_changes_of_relied_on_clusters_are_not_held() -> None:
    p = proto()
    connect_sotw(p, split_view({"a": "1", "b": "empty"}, ("a",), "r1"))
    eds = only(p.on_view(split_view({"a": "2", "b": "empty"}, ("a",), "r1")), ENDPOINT)
    assert [r.name for r in eds.resources] == ["a"]


def test_unordered_stream_sends_routes_before_clusters_are_asked_for() -> None:
    # a proxyless gRPC client subscribes to clusters only once it holds the routes naming
    # them: an ordered stream would hold the routes back forever
    ordered = proto()
    ordered.on_view(view({"a": "1"}, ("a",)))
    only(ordered.on_request(Request(type_url=LISTENER, names=("out",))), LISTENER)
    assert ordered.on_request(Request(type_url=ROUTE, names=("outbound_http",))) == []

    p = proto()
    p.ordered = False
    p.on_view(view({"a": "1"}, ("a",)))
    lds = only(p.on_request(Request(type_url=LISTENER, names=("out",))), LISTENER)
    rds = only(p.on_request(Request(type_url=ROUTE, names=("outbound_http",))), ROUTE)
    cds = only(p.on_request(Request(type_url=CLUSTER, names=("a",))), CLUSTER)
    eds = only(p.on_request(Request(type_url=ENDPOINT, names=("a",))), ENDPOINT)
    assert [r.name for r in cds.resources] == ["a"] and [r.name for r in eds.resources] == ["a"]
    for r, names in ((lds, ("out",)), (rds, ("outbound_http",)), (cds, ("a",)), (eds, ("a",))):
        assert ack(p, r, names) == []
    assert all(s["sent"] == s["acked"] for s in p.status().values())
