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
        (conn,) = ads.connections.values()
        asked = conn.name_lists[ENDPOINT]
        assert asked.names == tuple(names)
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
        cds_status = dict(types["cds"])
        # how long the ACK took after the snapshot was ready; no lag once ACKed
        assert isinstance(cds_status.pop("converged_ms"), float)
        assert cds_status == {
            "sent": cds.version_info,
            "acked": cds.version_info,
            "nack": None,
            "last_nack": None,
            "nacks": 0,
            "lag_ms": 0,
        }
        assert types["eds"]["acked"] == eds.version_info
        # the ACK repeated the list byte for byte: recognised without reading the names
        assert conn.name_lists[ENDPOINT] is asked
        await client.out.put(None)


async def test_a_request_that_is_not_protobuf_is_refused(server: tuple[AdsServer, int]) -> None:
    ads, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
        )(iter([b"\xff\xff\xff"]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "bad request" in (err.value.details() or "")
        assert ads.syncz() == []


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


async def test_a_stalled_proxy_does_not_hold_up_the_others() -> None:
    """One client stops reading; a config change still reaches another client promptly."""
    import textwrap

    from ..generate.meshcfg import snapshot as snap

    def many(n: int, port: int) -> str:
        docs = []
        for i in range(n):
            docs.append(
                textwrap.dedent(
                    f"""
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {{name: s{i}, namespace: default}}
                    spec:
                      hosts: [s{i}.default.svc.cluster.local]
                      location: MESH_INTERNAL
                      resolution: STATIC
                      ports: [{{number: {port}, name: http, protocol: HTTP}}]
                      endpoints: [{{address: 10.1.{i // 250}.{i % 250 + 1}}}]
                    """
                )
            )
        return "---".join(docs)

    ads = AdsServer("boot")
    ads.update(ConfigGenerator(snap(many(400, 80))))
    port = await ads.start("127.0.0.1", 0)
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as slow_ch,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as fast_ch,
        ):
            slow, fast = Client(slow_ch), Client(fast_ch)
            for c, name in ((slow, "slow"), (fast, "fast")):
                req = node(f"sidecar~127.0.0.1~{name}.default~default.svc.cluster.local")
                req.type_url = CLUSTER
                await c.out.put(req)
            first = await fast.recv()  # the slow one never reads again
            await fast.out.put(
                discovery_pb2.DiscoveryRequest(
                    type_url=CLUSTER, version_info=first.version_info, response_nonce=first.nonce
                )
            )
            # several big changes: the slow stream's window fills and its pushes coalesce
            for round_ in range(3):
                ads.update(ConfigGenerator(snap(many(400, 81 + round_))))
                loop = asyncio.get_running_loop()
                started = loop.time()
                got = await fast.recv()
                assert loop.time() - started < 2.0
                await fast.out.put(
                    discovery_pb2.DiscoveryRequest(
                        type_url=CLUSTER, version_info=got.version_info, response_nonce=got.nonce
                    )
                )
            assert all(
                not c.view_pending
                for c in ads.connections.values()
                if c.proxy and "fast" in c.proxy.node_id
            )
            await slow.out.put(None)
            await fast.out.put(None)
    finally:
        await ads.stop(0)


async def test_metrics_count_pushes_acks_and_connections(server: tuple[AdsServer, int]) -> None:
    from prometheus_client import generate_latest

    ads, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        client = Client(channel)
        first = node()
        first.type_url = CLUSTER
        await client.out.put(first)
        cds = await client.recv()
        await client.out.put(
            discovery_pb2.DiscoveryRequest(
                type_url=CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
            )
        )
        for _ in range(100):
            text = generate_latest(ads.metrics.registry).decode()
            if 'shoal_xds_convergence_seconds_count{type="cds"} 1.0' in text:
                break
            await asyncio.sleep(0.02)
        assert 'shoal_xds_pushes_total{trigger="request",type="cds"} 1.0' in text
        assert 'shoal_xds_convergence_seconds_count{type="cds"} 1.0' in text
        assert "shoal_xds_connected_proxies 1.0" in text
        await client.out.put(None)


async def test_the_server_is_fanning_out_until_proxies_have_acked(
    server: tuple[AdsServer, int],
) -> None:
    ads, port = server
    assert not ads.fanning_out()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        clients = [Client(channel) for _ in range(3)]
        responses = []
        for i, client in enumerate(clients):
            first = node(f"sidecar~127.0.0.1~c{i}.default~default.svc.cluster.local")
            first.type_url = CLUSTER
            await client.out.put(first)
            responses.append(await client.recv())
        assert ads.fanning_out()  # three responses sent, none answered
        for client, cds in zip(clients, responses, strict=True):
            await client.out.put(
                discovery_pb2.DiscoveryRequest(
                    type_url=CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
                )
            )
        for _ in range(100):
            if not ads.fanning_out():
                break
            await asyncio.sleep(0.02)
        assert not ads.fanning_out()
        for client in clients:
            await client.out.put(None)
