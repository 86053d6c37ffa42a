"""Repeated sotw subscription lists are recognised from the bytes, and only when exact."""

from __future__ import annotations

import gc

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from shoal.generate import ENDPOINT
from shoal.xds.acknames import EMPTY, Interned, NameList, request_names

NAMES = [f"outbound|80||svc-{i}.default.svc.cluster.local" for i in range(100)]


def wire(
    names: list[str], nonce: str = "1", version: str = "v1", **fields: object
) -> tuple[bytes, discovery_pb2.DiscoveryRequest]:
    msg = discovery_pb2.DiscoveryRequest(
        version_info=version,
        resource_names=names,
        type_url=ENDPOINT,
        response_nonce=nonce,
        **fields,  # type: ignore[arg-type]
    )
    raw = msg.SerializeToString()
    return raw, discovery_pb2.DiscoveryRequest.FromString(raw)


INTERNED = Interned()  # as one server holds it for all its streams


def names_of(raw: bytes, last: NameList | None = None) -> NameList:
    return request_names(raw, discovery_pb2.DiscoveryRequest.FromString(raw), last, INTERNED)


def test_an_ack_repeating_the_list_reuses_the_last_one() -> None:
    first = names_of(wire(NAMES)[0])
    assert first.names == tuple(NAMES)
    # a later ACK: new version and nonce, the same list
    assert names_of(wire(NAMES, nonce="2", version="v2")[0], first) is first


def test_the_fast_path_holds_with_a_node_and_an_error_detail() -> None:
    node = discovery_pb2.DiscoveryRequest().node
    node.id = "sidecar~127.0.0.1~a.default~default.svc.cluster.local"
    first = names_of(wire(NAMES, node=node)[0])
    nack = wire(NAMES, nonce="3", node=node, error_detail=status_pb2.Status(message="bad"))[0]
    assert names_of(nack, first) is first


def test_a_changed_list_is_read_afresh() -> None:
    first = names_of(wire(NAMES)[0])
    fewer = names_of(wire(NAMES[:-1], nonce="2")[0], first)
    assert fewer.names == tuple(NAMES[:-1])
    reordered = names_of(wire(list(reversed(NAMES)), nonce="3")[0], first)
    assert reordered is not first and reordered.names == tuple(reversed(NAMES))


def test_an_unusual_encoding_takes_the_slow_path_and_is_read_right() -> None:
    first = names_of(wire(NAMES)[0])
    # the same names, but with the version between them (legal protobuf, not canonical)
    head = discovery_pb2.DiscoveryRequest(resource_names=NAMES[:50]).SerializeToString()
    mid = discovery_pb2.DiscoveryRequest(version_info="v2").SerializeToString()
    rest = discovery_pb2.DiscoveryRequest(
        resource_names=NAMES[50:], type_url=ENDPOINT, response_nonce="2"
    ).SerializeToString()
    got = names_of(head + mid + rest, first)
    assert got.names == tuple(NAMES)
    # an extra name hidden after the type: longer than the canonical bytes, read in full
    extra = discovery_pb2.DiscoveryRequest(resource_names=["x"]).SerializeToString()
    got = names_of(wire(NAMES, nonce="4")[0] + extra, first)
    assert got.names == (*NAMES, "x")


def test_equal_lists_are_shared_between_streams_and_dropped_when_unused() -> None:
    a = names_of(wire(NAMES)[0])
    b = names_of(wire(NAMES, nonce="9")[0])  # another stream, no list of its own yet
    assert a is b
    # the strings are interned too: lists in another order still share them
    other = names_of(wire(list(reversed(NAMES)))[0])
    assert all(x is y for x, y in zip(other.names, reversed(a.names), strict=True))
    c = names_of(wire(["only-here"])[0])
    key = c.wire
    assert key in INTERNED.lists
    del c
    gc.collect()
    assert key not in INTERNED.lists  # gone with its last holder


def test_an_empty_list_is_the_shared_empty_one() -> None:
    raw = discovery_pb2.DiscoveryRequest(type_url=ENDPOINT).SerializeToString()
    assert names_of(raw) is EMPTY
    assert names_of(raw, EMPTY) is EMPTY
