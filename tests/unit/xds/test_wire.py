"""Hand-assembled response bytes parse back to exactly the protobuf messages they stand for."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from hypothesis import given
from hypothesis import strategies as st

from shoal.generate import CLUSTER, prepare
from shoal.xds.messages import Response
from shoal.xds.wire import Encoder, encode_delta, encode_sotw

names = st.lists(st.text(min_size=1, max_size=300), min_size=0, max_size=5, unique=True)


@given(names=names, version=st.text(max_size=40), nonce=st.text(max_size=10))
def test_sotw_bytes_equal_protobuf_serialization(
    names: list[str], version: str, nonce: str
) -> None:
    resources = tuple(prepare(n, cluster_pb2.Cluster(name=n)) for n in names)
    raw = encode_sotw(Response(CLUSTER, version, nonce, resources))
    parsed = discovery_pb2.DiscoveryResponse.FromString(raw)
    assert parsed.version_info == version
    assert parsed.nonce == nonce
    assert parsed.type_url == CLUSTER
    got = [cluster_pb2.Cluster.FromString(a.value).name for a in parsed.resources]
    assert got == names
    assert raw == parsed.SerializeToString(deterministic=True)


@given(names=names, removed=names, version=st.text(max_size=40))
def test_delta_bytes_equal_protobuf_serialization(
    names: list[str], removed: list[str], version: str
) -> None:
    resources = tuple(prepare(n, cluster_pb2.Cluster(name=n)) for n in names)
    raw = encode_delta(Response(CLUSTER, version, "7", resources, tuple(removed)))
    parsed = discovery_pb2.DeltaDiscoveryResponse.FromString(raw)
    assert parsed.system_version_info == version
    assert [r.name for r in parsed.resources] == names
    assert [r.version for r in parsed.resources] == [r.version for r in resources]
    assert list(parsed.removed_resources) == removed
    assert raw == parsed.SerializeToString(deterministic=True)


def test_cached_sotw_and_delta_messages_of_the_same_maps_stay_apart() -> None:
    # A state-of-the-world and a delta stream may be sent the same shared map with the same
    # version and nonce (both first responses of a snapshot); each must get its own message.
    resources = tuple(prepare(n, cluster_pb2.Cluster(name=n)) for n in ("a", "b"))
    key = (object(),)
    encoder = Encoder()
    sotw = encoder.sotw(Response(CLUSTER, "v", "s/1", resources, cache_key=key))
    delta = encoder.delta(Response(CLUSTER, "v", "s/1", resources, cache_key=key))
    assert [r.name for r in discovery_pb2.DeltaDiscoveryResponse.FromString(delta).resources] == [
        "a",
        "b",
    ]
    assert len(discovery_pb2.DiscoveryResponse.FromString(sotw).resources) == 2
    assert encoder.delta(Response(CLUSTER, "v", "s/1", resources, cache_key=key)) is delta
    # the encoder that remembers gives the bytes of the one that does not
    assert sotw == encode_sotw(Response(CLUSTER, "v", "s/1", resources))
    assert delta == encode_delta(Response(CLUSTER, "v", "s/1", resources))
