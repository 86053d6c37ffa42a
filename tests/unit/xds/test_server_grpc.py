"""The ADS servicer over real gRPC on loopback, with a client that speaks like Envoy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ConfigGenerator
from shoal.xds.server import AdsServer

from ..generate.meshcfg import REVIEWS, snapshot

NODE = "sidecar~127.0.0.1~client.default~default.svc.cluster.local"


def node(node_id: str = NODE) -> discovery_pb2.DiscoveryRequest:
    meta = struct_pb2.Struct()
    meta.update({"NAMESPACE": "default", "INTERCEPTION_MODE": "NONE", "OUTBOUND_PORT": "15001"})
    req = discovery_pb2.DiscoveryRequest()
    req.node.id = node_id
    req.node.metadata.CopyFrom(meta)
    return req


class Client:
    """An ADS client: a queue of requests out, responses in."""

    def __init__(self, channel: grpc.aio.Channel, delta: bool = False) -> None:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        self.out: asyncio.Queue[object] = asyncio.Queue()
        method = stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources
        self.call = method(self._requests())

    async def _requests(self) -> AsyncIterator[object]:
        while True:
            item = await self.out.get()
            if item is None:
                return
            yield item

    async def recv(self) -> discovery_pb2.DiscoveryResponse:
        msg = await asyncio.wait_for(self.call.read(), 5)
        assert msg is not grpc.aio.EOF
        return msg  # type: ignore[no-any-return]


@pytest.fixture
async def server() -> AsyncIterator[tuple[AdsServer, int]]:
    ads = AdsServer("boot")
    ads.update(ConfigGenerator(snapshot(REVIEWS)))
    port = await ads.start("127.0.0.1", 0)
    yield ads, port
    await ads.stop(0)


async def test_state_of_the_world_handshake_and_syncz(server: tuple[AdsServer, int]) -> None:
    ads, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        client = Client(channel)
        first = node()
        first.type_url = CLUSTER
        await client.out.put(first)
        cds = await client.recv()
        assert cds.type_url == CLUSTER
        names = sorted(cluster_pb2.Cluster.FromString(a.value).name for a in cds.resources)
        assert "outbound|80|v1|reviews.default.svc.cluster.local" in names
        # the EDS request needs no node: only the first message carries it
        await client.out.put(
            discovery_pb2.DiscoveryRequest(type_url=ENDPOINT, resource_names=names)
        )
        eds = await client.recv()
        assert eds.type_url == ENDPOINT and len(eds.resources) == len(names)
        await client.out.put(
            discovery_pb2.DiscoveryRequest(
                type_url=CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
            )
        )
        await client.out.put(
            discovery_pb2.DiscoveryRequest(
                type_url=ENDPOINT,
                version_info=eds.version_info,
                response_nonce=eds.nonce,
                resource_names=names,
            )
        )
        for _ in range(50):
            status = ads.syncz()
            if status and status[0]["types"]["eds"]["acked"]:  # type: ignore[index]
                break
            await asyncio.sleep(0.02)
        (entry,) = ads.syncz()
        assert entry["node"] == NODE
        types = entry["types"]
        assert isinstance(types, dict)
        assert types["cds"] == {"sent": cds.version_info, "acked": cds.version_info, "nack": None}
        assert types["eds"]["acked"] == eds.version_info
        await client.out.put(None)


async def test_delta_stream_sends_resources_with_versions(server: tuple[AdsServer, int]) -> None:
    _, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        client = Client(channel, delta=True)
        req = discovery_pb2.DeltaDiscoveryRequest(type_url=LISTENER)
        req.node.CopyFrom(node().node)
        await client.out.put(req)
        lds = await client.recv()
        assert [r.name for r in lds.resources] == ["outbound_http"]
        assert lds.resources[0].version
        await client.out.put(None)


async def test_a_node_shoal_cannot_parse_is_refused(server: tuple[AdsServer, int]) -> None:
    ads, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        client = Client(channel)
        bad = node("not-an-istio-node-id")
        bad.type_url = CLUSTER
        await client.out.put(bad)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.recv()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "node id" in (err.value.details() or "")
        assert ads.syncz() == []
