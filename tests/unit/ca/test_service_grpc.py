"""The CA service and secure ADS over real TLS gRPC on 127.0.0.1: tokens and identities checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from shoal.agent.certs import new_key_and_csr
from shoal.ca import Identity
from shoal.ca.client import create_certificate, secure_channel
from shoal.controlplane.security import MeshSecurity
from shoal.generate import ConfigGenerator
from shoal.xds.server import AdsServer

from ..generate.meshcfg import REVIEWS, snapshot

ME = Identity("default", "reviews")


@pytest.fixture
async def secure_server(tmp_path: Path) -> AsyncIterator[tuple[MeshSecurity, str]]:
    security = MeshSecurity(tmp_path / "ca", cert_ttl_s=60)
    ads = AdsServer("boot")
    security.install(ads)
    ads.update(ConfigGenerator(snapshot(REVIEWS)))
    port = await ads.start("127.0.0.1", 0)
    yield security, f"127.0.0.1:{port}"
    await ads.stop(0)


async def test_workload_gets_a_certificate_for_its_own_identity_only(
    secure_server: tuple[MeshSecurity, str],
) -> None:
    security, address = secure_server
    token = security.tokens.issue(ME)
    roots = security.roots_file.read_text()
    key, csr = new_key_and_csr(ME)
    async with secure_channel(address, roots) as channel:
        reply = await create_certificate(channel, csr, 20, token)
        leaf = x509.load_pem_x509_certificate(reply.chain[0].encode())
        assert leaf.public_key() == key.public_key()
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(g.value) for g in san] == [ME.spiffe_id]
        assert reply.roots == security.ca.roots_pem

        _, theirs = new_key_and_csr(Identity("default", "ratings"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_certificate(channel, theirs, 20, token)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        for bad in ("", "shoal1.bm9wZQ.x"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create_certificate(channel, csr, 20, bad)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert security.service.issued == 1


async def test_untrusted_clients_cannot_even_connect(
    secure_server: tuple[MeshSecurity, str], tmp_path: Path
) -> None:
    security, address = secure_server
    other = MeshSecurity(tmp_path / "other-ca", cert_ttl_s=60)
    _, csr = new_key_and_csr(ME)
    async with secure_channel(address, other.roots_file.read_text()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_certificate(channel, csr, 20, security.tokens.issue(ME), deadline_s=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def _node(sa: str) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(
        type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster"
    )
    req.node.id = "sidecar~127.0.0.1~reviews-0.default~default.svc.cluster.local"
    meta = struct_pb2.Struct()
    meta.update(
        {
            "NAMESPACE": "default",
            "SERVICE_ACCOUNT": sa,
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": "15001",
        }
    )
    req.node.metadata.CopyFrom(meta)
    return req


async def _ads_first(address: str, roots: str, sa: str, token: str | None) -> object:
    async with secure_channel(address, roots) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        call = stub.StreamAggregatedResources(iter([_node(sa)]), metadata=metadata, timeout=5)
        try:
            return await call.read()
        except grpc.aio.AioRpcError as err:
            return err.code()


async def test_xds_refuses_streams_without_a_token_or_for_another_identity(
    secure_server: tuple[MeshSecurity, str],
) -> None:
    security, address = secure_server
    roots = security.roots_file.read_text()
    token = security.tokens.issue(ME)
    assert await _ads_first(address, roots, "reviews", None) == grpc.StatusCode.UNAUTHENTICATED
    forged = token[:-4] + "AAAA"
    assert await _ads_first(address, roots, "reviews", forged) == grpc.StatusCode.UNAUTHENTICATED
    denied = await _ads_first(address, roots, "ratings", token)
    assert denied == grpc.StatusCode.PERMISSION_DENIED
    ok = await _ads_first(address, roots, "reviews", token)
    assert isinstance(ok, discovery_pb2.DiscoveryResponse) and ok.resources
