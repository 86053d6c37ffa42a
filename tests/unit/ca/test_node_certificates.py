"""A node proxy's token and the CA over real TLS gRPC: only the identities of its own pods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from shoal.agent.certs import new_key_and_csr
from shoal.ca import Identity, TokenError
from shoal.ca.client import create_certificate, secure_channel
from shoal.ca.nodetokens import NodeTokens, is_node_token, node_identity
from shoal.controlplane.security import MeshSecurity
from shoal.generate import ConfigGenerator
from shoal.xds.server import AdsServer

from ..generate.meshcfg import REVIEWS, snapshot

A = Identity("shop", "frontend")
B = Identity("shop", "reviews")
ELSEWHERE = Identity("shop", "ratings")  # a pod of another node


def test_node_token_round_trip_and_forgeries(tmp_path: Path) -> None:
    tokens = NodeTokens.in_dir(tmp_path)
    token = tokens.issue("n1", [A, B, A])
    grant = tokens.verify(token)
    assert grant.node == "n1" and grant.identities == {A, B}
    assert grant.identity == node_identity("n1")
    assert grant.allows(A) and not grant.allows(ELSEWHERE)
    assert is_node_token(f"Bearer {token}") and not is_node_token("Bearer shoal1.x.y")
    prefix, payload, mac = token.split(".")
    with pytest.raises(TokenError, match="signature"):
        tokens.verify(f"{prefix}.{payload}.{mac[:-2]}AA")
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(tokens.issue("n1", [A], ttl_s=-10))
    (tmp_path / "other").mkdir()
    with pytest.raises(TokenError, match="signature"):  # another control plane's key
        NodeTokens.in_dir(tmp_path / "other").verify(token)


def test_a_workload_token_is_not_a_node_token_and_back(tmp_path: Path) -> None:
    security = MeshSecurity(tmp_path / "ca", cert_ttl_s=60)
    workload = security.tokens.issue(A)
    node = security.node_tokens.issue("n1", [A])
    # same key, separate MAC domains: neither verifies as the other
    _, wpayload, wmac = workload.split(".")
    with pytest.raises(TokenError):
        security.node_tokens.verify(f"shoalnode1.{wpayload}.{wmac}")
    _, npayload, nmac = node.split(".")
    with pytest.raises(TokenError):
        security.tokens.verify(f"shoal1.{npayload}.{nmac}")


@pytest.fixture
async def secure_server(tmp_path: Path) -> AsyncIterator[tuple[MeshSecurity, str]]:
    security = MeshSecurity(tmp_path / "ca", cert_ttl_s=60)
    ads = AdsServer("boot")
    security.install(ads)
    ads.update(ConfigGenerator(snapshot(REVIEWS)))
    port = await ads.start("127.0.0.1", 0)
    yield security, f"127.0.0.1:{port}"
    await ads.stop(0)


async def test_node_gets_its_pods_identities_and_no_other(
    secure_server: tuple[MeshSecurity, str],
) -> None:
    security, address = secure_server
    token = security.node_tokens.issue("n1", [A, B])
    async with secure_channel(address, security.roots_file.read_text()) as channel:
        for identity in (A, B):
            key, csr = new_key_and_csr(identity)
            reply = await create_certificate(channel, csr, 20, token)
            leaf = x509.load_pem_x509_certificate(reply.chain[0].encode())
            assert leaf.public_key() == key.public_key()
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert [str(g.value) for g in san] == [identity.spiffe_id]

        for refused in (ELSEWHERE, node_identity("n1"), Identity("other", "frontend")):
            _, csr = new_key_and_csr(refused)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create_certificate(channel, csr, 20, token)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may not obtain" in (err.value.details() or "")

        _, csr = new_key_and_csr(A)
        forged = security.node_tokens.issue("n1", [A])[:-3] + "AAA"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_certificate(channel, csr, 20, forged)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert security.service.issued == 2
    assert security.service.refused == 4
