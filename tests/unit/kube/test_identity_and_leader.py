"""TokenReview identities, the Lease and the leader's writes, against the fake API server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from harness.kubecp import connect, fake_api, until
from shoal.kube.leader import LeaderElector, LeaseSettings
from shoal.kube.rootcert import CONFIGMAP, KEY, RootCertWriter
from shoal.kube.tokenreview import TokenRejected, TokenReviewer, token_expiry

FAST = LeaseSettings(lease_s=1.0, renew_s=0.6, retry_s=0.1)


def _pod(name: str, ns: str, sa: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "x"}]},
    }


async def test_the_identity_is_what_the_api_server_says_the_token_is(tmp_path: Path) -> None:
    async with fake_api(tmp_path) as (server, client):
        ns = server.type("v1", "Namespace")
        server.create(ns, {"metadata": {"name": "shop"}})
        server.create(
            server.type("v1", "ServiceAccount"),
            {"metadata": {"name": "reviews", "namespace": "shop"}},
        )
        server.create(server.type("v1", "Pod"), _pod("reviews-1", "shop", "reviews"))
        reviewer = TokenReviewer(client)
        token = server.issue_token("shop", "reviews", ("istio-ca",), pod="reviews-1")
        assert await reviewer.authenticate(f"Bearer {token}") == ("shop", "reviews")
        assert await reviewer.authenticate(f"Bearer {token}") == ("shop", "reviews")
        assert reviewer.reviews == 1  # the second came from the cache

        wrong_audience = server.issue_token("shop", "reviews", ("some-other-service",))
        with pytest.raises(TokenRejected, match="audience"):
            await reviewer.authenticate(f"Bearer {wrong_audience}")
        with pytest.raises(TokenRejected):
            await reviewer.authenticate("Bearer forged.token.value")


async def test_a_cached_review_ends_with_the_token(tmp_path: Path) -> None:
    """Reviews are cached, but never past the token's `exp`: an expired token is reviewed
    again, and refused."""
    async with fake_api(tmp_path) as (server, client):
        server.create(server.type("v1", "Namespace"), {"metadata": {"name": "shop"}})
        reviewer = TokenReviewer(client, cache_s=300)
        token = server.issue_token("shop", "reviews", ("istio-ca",), expiration_seconds=2)
        expiry = token_expiry(token)
        assert expiry is not None and expiry <= time.time() + 2
        assert await reviewer.authenticate(f"Bearer {token}") == ("shop", "reviews")
        assert await reviewer.authenticate(f"Bearer {token}") == ("shop", "reviews")
        assert reviewer.reviews == 1
        await asyncio.sleep(max(0.0, expiry - time.time()) + 0.5)
        with pytest.raises(TokenRejected):
            await reviewer.authenticate(f"Bearer {token}")
        assert reviewer.reviews == 2


@pytest.mark.parametrize(
    ("token", "expiry"),
    [
        ("e30.eyJleHAiOjE3MDAwMDAwMDB9.sig", 1700000000.0),  # {"exp":1700000000}
        ("e30.eyJzdWIiOiJ4In0.sig", None),  # no exp
        ("e30.eyJleHAiOnRydWV9.sig", None),  # exp not a number
        ("e30.!!!.sig", None),
        ("shoal1.payload.mac", None),
        ("opaque", None),
    ],
)
def test_token_expiry_reads_the_exp_claim(token: str, expiry: float | None) -> None:
    assert token_expiry(token) == expiry


async def test_one_replica_leads_and_another_takes_over_within_the_ttl(tmp_path: Path) -> None:
    async with fake_api(tmp_path) as (server, client):
        server.create(server.type("v1", "Namespace"), {"metadata": {"name": "shoal-system"}})
        other = connect(server, tmp_path, "b")
        a = LeaderElector(client, "replica-a", FAST)
        b = LeaderElector(other, "replica-b", FAST)
        ta = asyncio.create_task(a.run())
        await until(lambda: a.leading)
        tb = asyncio.create_task(b.run())
        await asyncio.sleep(0.5)
        assert a.leading and not b.leading and b.holder == "replica-a"

        # replica-a "dies": its connection to the API goes, it renews no more
        await client.close()
        lost = asyncio.get_running_loop().time()
        await until(lambda: b.leading, within=5)
        took = asyncio.get_running_loop().time() - lost
        assert took <= FAST.lease_s + 2 * FAST.retry_s + 0.3
        await until(lambda: not a.leading, within=2)  # it stepped down on its own
        lease = server.get("coordination.k8s.io/v1", "Lease", "shoal-control-plane", "shoal-system")
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "replica-b"
        assert lease["spec"]["leaseTransitions"] == 1
        ta.cancel()
        tb.cancel()  # a clean stop gives the Lease up
        await asyncio.gather(ta, tb, return_exceptions=True)
        lease = server.get("coordination.k8s.io/v1", "Lease", "shoal-control-plane", "shoal-system")
        assert lease is not None and not lease["spec"].get("holderIdentity")
        await other.close()


async def test_root_certificate_configmaps_in_every_namespace(tmp_path: Path) -> None:
    async with fake_api(tmp_path) as (server, client):
        for name in ("shop", "web"):
            server.create(server.type("v1", "Namespace"), {"metadata": {"name": name}})
        writer = RootCertWriter(client)
        await writer.sync(["shop", "web"], "PEM-1")
        await writer.sync(["shop", "web"], "PEM-1")
        assert writer.writes == 2
        cm = server.get("v1", "ConfigMap", CONFIGMAP, "shop")
        assert cm is not None and cm["data"][KEY] == "PEM-1"
        assert cm["metadata"]["labels"]["istio.io/config"] == "true"
        writer.forget()  # a new leader: finds them right and writes nothing
        await writer.sync(["shop", "web"], "PEM-1")
        assert writer.writes == 2
        await writer.sync(["shop"], "PEM-2")
        cm = server.get("v1", "ConfigMap", CONFIGMAP, "shop")
        assert cm is not None and cm["data"][KEY] == "PEM-2"
