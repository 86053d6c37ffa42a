"""Oracle for message sharing: the same xDS request sequences with sharing on and off give the
same responses, byte for byte.

With sharing on, streams get the snapshot's shared `ResourceSet`s (equal content: the same
object, as reuse across snapshots gives them) and the encoder builds a response once per
`cache_key` for every stream (`xds/sharing.py`, `xds/wire.py`). With sharing off
(`StreamProtocol(share=False)`), every map is a plain dict made afresh for each view and every
message is encoded on its own. Hypothesis drives several streams through random sequences of
snapshots, first requests, ACKs, NACKs, subscription changes and fresh requests (state of the
world and delta); after every step both sides must have sent the same (type, version, nonce,
resources, removed), and the same bytes. A cache key that named too little would hand one
stream another stream's message; this test would see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ROUTE, PreparedResource, ProxyView
from shoal.generate.resourceset import ResourceSet
from shoal.xds import wire
from shoal.xds.mapcache import MapMemos
from shoal.xds.messages import Request, Response
from shoal.xds.stream import WILDCARD_TYPES, StreamProtocol

CLUSTERS = ("a", "b", "c", "d")
TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
STREAMS = 2

# One object per (type, name, version, refs): unchanged resources keep their identity across
# snapshots, as the generator's take-over gives them.
_POOL: dict[tuple[object, ...], PreparedResource] = {}


def resource(
    type_url: str, name: str, version: str, refs: frozenset[str] = frozenset()
) -> PreparedResource:
    key = (type_url, name, version, refs)
    if key not in _POOL:
        _POOL[key] = PreparedResource(
            name=name,
            type_url=type_url,
            any_bytes=f"{type_url[-9:]}:{name}:{version}".encode(),
            version=version,
            refs=refs,
            uses_eds=type_url == CLUSTER,
        )
    return _POOL[key]


Content = dict[str, tuple[tuple[str, str, frozenset[str]], ...]]


@st.composite
def contents(draw: st.DrawFn) -> Content:
    """One snapshot's resources: some clusters with their assignments, a listener and a route
    table naming some of them."""
    present = draw(st.lists(st.sampled_from(CLUSTERS), min_size=1, unique=True))
    versions = st.sampled_from(("1", "2", "3"))
    cds = tuple((n, draw(versions), frozenset[str]()) for n in sorted(present))
    eds = tuple((n, draw(versions), frozenset[str]()) for n in sorted(present))
    routed = frozenset(draw(st.lists(st.sampled_from(present), unique=True)))
    lds = (("out", draw(versions), frozenset[str]()),)
    rds = tuple(
        (n, draw(versions), routed)
        for n in draw(st.lists(st.sampled_from(("r1", "r2")), min_size=1, unique=True))
    )
    return {CLUSTER: cds, ENDPOINT: eds, LISTENER: lds, ROUTE: rds}


class Shared:
    """Views with sharing on: equal content is the very same ResourceSet."""

    def __init__(self) -> None:
        self._sets: dict[tuple[object, ...], ResourceSet] = {}

    def view(self, version: str, content: Content) -> ProxyView:
        maps = {}
        for t, items in content.items():
            key = (t, items)
            if key not in self._sets:
                self._sets[key] = ResourceSet.of(resource(t, n, v, refs) for n, v, refs in items)
            maps[t] = self._sets[key]
        return ProxyView(version=version, resources=MappingProxyType(maps))


def plain_view(version: str, content: Content) -> ProxyView:
    """Views with sharing off: a new plain dict per type and view."""
    maps = {t: {n: resource(t, n, v, refs) for n, v, refs in items} for t, items in content.items()}
    return ProxyView(version=version, resources=MappingProxyType(maps))


def missing(type_url: str, name: str) -> PreparedResource | None:
    return resource(ENDPOINT, name, "empty") if type_url == ENDPOINT else None


@dataclass
class Client:
    """What an Envoy-like client remembers per type: the last response, whether it is still
    unanswered, the version it accepted and what it subscribes to."""

    delta: bool
    last: dict[str, Response] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)
    accepted: dict[str, str] = field(default_factory=dict)
    names: dict[str, frozenset[str]] = field(default_factory=dict)

    def got(self, responses: list[Response]) -> None:
        for r in responses:
            self.last[r.type_url] = r
            self.unanswered.add(r.type_url)

    def request(self, op: tuple[str, str, frozenset[str]]) -> Request | None:
        kind, t, names = op
        if t in WILDCARD_TYPES:
            names = frozenset()
        requested = t in self.names
        if kind == "first" or not requested:
            if requested:
                return None
            self.names[t] = names
            if self.delta:
                return Request(type_url=t, subscribe=tuple(sorted(names)))
            return Request(type_url=t, names=tuple(sorted(names)))
        last = self.last.get(t)
        if kind in ("ack", "nack"):
            if last is None or t not in self.unanswered:
                return None
            self.unanswered.discard(t)
            error = "refused" if kind == "nack" else None
            if error is None:
                self.accepted[t] = last.version
            if self.delta:
                return Request(type_url=t, nonce=last.nonce, error=error)
            return Request(
                type_url=t,
                nonce=last.nonce,
                version=self.accepted.get(t, ""),
                names=tuple(sorted(self.names[t])),
                error=error,
            )
        if kind == "subscribe" and t not in WILDCARD_TYPES:
            old, self.names[t] = self.names[t], names
            if self.delta:
                return Request(
                    type_url=t,
                    subscribe=tuple(sorted(names - old)),
                    unsubscribe=tuple(sorted(old - names)),
                )
            nonce = last.nonce if last is not None else ""
            return Request(
                type_url=t,
                nonce=nonce,
                version=self.accepted.get(t, ""),
                names=tuple(sorted(names)),
            )
        if kind == "afresh" and not self.delta:
            return Request(type_url=t, names=tuple(sorted(self.names[t])))
        return None


def seen(r: Response, encoded: bytes) -> tuple[object, ...]:
    return (
        r.type_url,
        r.version,
        r.nonce,
        tuple((x.name, x.version) for x in r.resources),
        r.removed,
        encoded,
    )


# "settle": the client answers everything unanswered with ACKs, as a healthy Envoy soon does
KINDS = ("first", "first", "ack", "ack", "settle", "settle", "nack", "subscribe", "afresh")
ClientOp = tuple[str, str, frozenset[str]]
Op = tuple[int, int, ClientOp | None]  # (stream, snapshot, None): a new view; else a request
ops = st.one_of(
    st.tuples(st.just(-1), st.integers(0, 3), st.none()),
    st.tuples(st.just(-1), st.integers(0, 3), st.none()),
    st.tuples(
        st.integers(0, STREAMS - 1),
        st.just(0),
        st.tuples(
            st.sampled_from(KINDS),
            st.sampled_from((CLUSTER, ENDPOINT, ENDPOINT, LISTENER, ROUTE, ROUTE)),
            st.frozensets(st.sampled_from((*CLUSTERS, "r1", "r2")), max_size=4),
        ),
    ),
)


class Side:
    """A few streams and their clients, with sharing on or off."""

    def __init__(self, delta: bool, share: bool) -> None:
        self.share = share
        # as a server does: one set of map memos for all streams, one encoder
        memos = MapMemos()
        self.streams = [
            StreamProtocol(delta=delta, boot_id="boot", missing=missing, share=share, memos=memos)
            for _ in range(STREAMS)
        ]
        self.encoder = wire.Encoder()
        self.encode = self.encoder.delta if delta else self.encoder.sotw
        self.clients = [Client(delta) for _ in range(STREAMS)]
        self.views = Shared()

    def show(self, index: int, content: Content) -> list[list[Response]]:
        got = []
        for p, c in zip(self.streams, self.clients, strict=True):
            version = f"v{index}"
            make = self.views.view if self.share else plain_view
            view = make(version, content)
            rs = p.on_view(view)
            c.got(rs)
            got.append(rs)
        return got

    def ask(self, i: int, op: ClientOp) -> list[list[Response]]:
        if op[0] == "settle":
            got: list[Response] = []
            for t in TYPES:
                if t in self.clients[i].unanswered:
                    got += self.ask(i, ("ack", t, op[2]))[0]
            return [got]
        req = self.clients[i].request(op)
        rs = self.streams[i].on_request(req) if req is not None else []
        self.clients[i].got(rs)
        return [rs]


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
@settings(max_examples=150, deadline=None)
@given(snapshots=st.lists(contents(), min_size=4, max_size=4), steps=st.lists(ops, max_size=60))
def test_responses_are_the_same_with_sharing_on_and_off(
    delta: bool, snapshots: list[Content], steps: list[Op]
) -> None:
    on, off = Side(delta, share=True), Side(delta, share=False)
    for stream, index, client_op in [(-1, 0, None), *steps]:
        if client_op is None:
            got_on, got_off = on.show(index, snapshots[index]), off.show(index, snapshots[index])
        else:
            got_on, got_off = on.ask(stream, client_op), off.ask(stream, client_op)
        assert all(r.cache_key is None for rs in got_off for r in rs)
        assert [[seen(r, on.encode(r)) for r in rs] for rs in got_on] == [
            [seen(r, off.encode(r)) for r in rs] for rs in got_off
        ]


def test_streams_in_the_same_position_are_handed_the_same_message() -> None:
    """The differential test means something only if the shared path is taken: two streams
    connecting to one view get one encoded message object per type."""
    content: Content = {
        CLUSTER: (("a", "1", frozenset()),),
        ENDPOINT: (("a", "1", frozenset()),),
        LISTENER: (("out", "1", frozenset()),),
        ROUTE: (("r1", "1", frozenset({"a"})),),
    }
    for delta in (False, True):
        side = Side(delta, share=True)
        side.show(0, content)
        for t, names in ((CLUSTER, ()), (ENDPOINT, ("a",))):
            first, second = (side.ask(i, ("first", t, frozenset(names)))[0] for i in (0, 1))
            assert first and first[0].cache_key is not None
            assert side.encode(first[0]) is side.encode(second[0])


def test_a_partial_update_is_shared_only_by_streams_holding_the_same_map() -> None:
    """Two streams one snapshot apart get different partial EDS updates to the same target:
    the message key names the map each holds, not only the target."""

    def content(a: str, b: str) -> Content:
        return {
            CLUSTER: (("a", "1", frozenset()), ("b", "1", frozenset())),
            ENDPOINT: (("a", a, frozenset()), ("b", b, frozenset())),
        }

    snapshots = [content("1", "1"), content("2", "1"), content("2", "2")]
    sides = [Side(False, share=True), Side(False, share=False)]
    sent = []
    for side in sides:
        side.show(0, snapshots[0])
        got: list[list[Response]] = []
        for i in (0, 1):
            side.ask(i, ("first", CLUSTER, frozenset()))
            side.ask(i, ("ack", CLUSTER, frozenset()))
            side.ask(i, ("first", ENDPOINT, frozenset({"a", "b"})))
        got += side.ask(0, ("ack", ENDPOINT, frozenset()))  # stream 0 holds snapshot 0's EDS
        got += side.show(1, snapshots[1])  # stream 0: a changed; stream 1 still in flight
        got += side.ask(0, ("ack", ENDPOINT, frozenset()))
        got += side.show(2, snapshots[2])  # stream 0: b changed
        got += side.ask(1, ("ack", ENDPOINT, frozenset()))  # stream 1: a and b changed
        sent.append([[seen(r, side.encode(r)) for r in rs] for rs in got])
    assert sent[0] == sent[1]
    names = [tuple(n for n, _ in rs[0][3]) for rs in sent[0] if rs]  # type: ignore[attr-defined]
    assert names[-2:] == [("b",), ("a", "b")], names
