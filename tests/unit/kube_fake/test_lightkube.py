"""The fake API server against lightkube 1.0.1, the client shoal.kube uses.

Typed CRUD and patches, paged lists, watches resumed from a resourceVersion, generic
resources for CRDs, 410 Expired (raised, or with a retrying handler a restart from the current
state), a watch that ends at its timeout being resumed from the last event, and the async
client on the server's own loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, AsyncClient, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Namespace, Service
from lightkube.types import OnErrorAction, OnErrorResult, PatchType, on_error_retry

from harness.kubeapi import KubeAPIServer, KubeAPIThread, write_kubeconfig


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[Client]:
    c = Client(KubeConfig.from_file(kubeconfig), namespace="default")
    yield c
    c._client._client.close()


def _cm(name: str, **data: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, labels={"app": name[0]}), data=data)


def _list_rv(client: Client) -> str:
    listing = client.list(ConfigMap)
    list(listing)  # the resourceVersion is known once the first page is read
    return listing.resourceVersion


def test_typed_create_get_patch_replace_delete(client: Client) -> None:
    created = client.create(_cm("a", x="1"))
    assert created.metadata is not None and created.metadata.uid
    got = client.get(ConfigMap, "a")
    assert got.data == {"x": "1"}
    merged = client.patch(ConfigMap, "a", {"data": {"y": "2"}}, patch_type=PatchType.MERGE)
    assert merged.data == {"x": "1", "y": "2"}
    jsonp = client.patch(
        ConfigMap, "a", [{"op": "remove", "path": "/data/x"}], patch_type=PatchType.JSON
    )
    assert jsonp.data == {"y": "2"}
    svc = client.create(
        Service(
            metadata=ObjectMeta(name="s"),
            spec=ServiceSpec(ports=[ServicePort(port=80, name="http")]),
        )
    )
    assert svc.spec is not None and svc.spec.clusterIP
    ports = {"spec": {"ports": [{"port": 80, "name": "http-web"}, {"port": 90, "name": "tcp"}]}}
    svc = client.patch(Service, "s", ports)  # strategic merge: ports merged by port
    assert svc.spec is not None and [p.name for p in svc.spec.ports or []] == ["http-web", "tcp"]
    stale = client.get(ConfigMap, "a")
    client.replace(_cm("a", z="3"))
    with pytest.raises(ApiError) as err:
        client.replace(stale)
    assert err.value.status.code == 409 and err.value.status.reason == "Conflict"
    with pytest.raises(ApiError) as err:
        client.create(_cm("a"))
    assert err.value.status.reason == "AlreadyExists"
    client.delete(ConfigMap, "a")
    with pytest.raises(ApiError) as err:
        client.get(ConfigMap, "a")
    assert err.value.status.code == 404


def test_paged_list_and_selectors(client: Client, kubeapi: KubeAPIThread) -> None:
    for n in range(7):
        client.create(_cm(f"{'ab'[n % 2]}{n}"))
    listing = client.list(ConfigMap, chunk_size=3)
    names = [c.metadata.name for c in listing if c.metadata]
    assert names == ["a0", "a2", "a4", "a6", "b1", "b3", "b5"]
    assert int(listing.resourceVersion) == kubeapi.store.rv
    assert sum("limit=3" in path for _, path in kubeapi.server.requests) == 3
    only_b = client.list(ConfigMap, labels={"app": "b"})
    assert [c.metadata.name for c in only_b if c.metadata] == ["b1", "b3", "b5"]
    by_name = client.list(ConfigMap, fields={"metadata.name": "a2"})
    assert [c.metadata.name for c in by_name if c.metadata] == ["a2"]
    everywhere = client.list(Namespace)
    assert {"default", "kube-system"} <= {n.metadata.name for n in everywhere if n.metadata}


def test_watch_resumes_from_a_list_resource_version(client: Client) -> None:
    client.create(_cm("a"))
    listing = client.list(ConfigMap)
    assert [c.metadata.name for c in listing if c.metadata] == ["a"]
    rv = listing.resourceVersion
    client.create(_cm("b"))
    client.patch(ConfigMap, "a", {"data": {"k": "v"}}, patch_type=PatchType.MERGE)
    client.delete(ConfigMap, "b")
    events = list(itertools.islice(client.watch(ConfigMap, resource_version=rv), 3))
    assert [(t, o.metadata.name) for t, o in events if o.metadata] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]


def test_watch_ended_by_the_server_is_resumed_from_the_last_event(
    client: Client, kubeapi: KubeAPIThread
) -> None:
    rv = _list_rv(client)
    client.create(_cm("a"))
    seen: list[tuple[str, str]] = []
    for type_, obj in client.watch(ConfigMap, resource_version=rv, server_timeout=1):
        assert obj.metadata is not None
        seen.append((type_, obj.metadata.name or ""))
        if len(seen) == 1:
            last_rv = obj.metadata.resourceVersion
            kubeapi.end_watches()
            # Written while no watch is open: the resumed watch must replay it.
            kubeapi.create(
                None,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "b", "namespace": "default"},
                },
            )
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "a"), ("ADDED", "b")]
    watches = [p for _, p in kubeapi.server.requests if "watch=true" in p]
    assert len(watches) == 2 and f"resourceVersion={last_rv}" in watches[1]


def test_410_is_raised_or_restarts_from_the_current_state(
    client: Client, kubeapi: KubeAPIThread
) -> None:
    client.create(_cm("a"))
    rv = _list_rv(client)
    client.delete(ConfigMap, "a")
    client.create(_cm("b"))
    kubeapi.compact()
    with pytest.raises(ApiError) as err:
        next(iter(client.watch(ConfigMap, resource_version=rv)))
    assert err.value.status.code == 410 and err.value.status.reason == "Expired"
    # lightkube's retrying handler drops the version: the watch starts over with the current
    # objects as ADDED and never says "a" was DELETED -- the informer must diff (notes).
    errors: list[int] = []

    def retry(e: Exception, count: int) -> OnErrorResult:
        errors.append(count)
        return on_error_retry(e, count) if count < 3 else OnErrorResult(OnErrorAction.RAISE)

    first = next(iter(client.watch(ConfigMap, resource_version=rv, on_error=retry)))
    assert errors == [1]
    assert first[0] == "ADDED" and first[1].metadata is not None
    assert first[1].metadata.name == "b"


def test_generic_resources_for_a_crd(client: Client) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "destinationrules.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io",
            "scope": "Namespaced",
            "names": {
                "kind": "DestinationRule",
                "plural": "destinationrules",
                "singular": "destinationrule",
                "listKind": "DestinationRuleList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    client.create(CustomResourceDefinition.from_dict(crd))
    established = client.get(CustomResourceDefinition, "destinationrules.networking.istio.io")
    assert established.status is not None
    assert {c.type for c in established.status.conditions or []} >= {"Established"}
    DR = create_namespaced_resource(
        "networking.istio.io", "v1", "DestinationRule", "destinationrules"
    )
    made = client.create(DR(metadata=ObjectMeta(name="r"), spec={"host": "reviews"}))
    assert made.metadata is not None and made.metadata.generation == 1
    patched = client.patch(
        DR, "r", {"spec": {"subsets": [{"name": "v1"}]}}, patch_type=PatchType.MERGE
    )
    assert patched.spec == {"host": "reviews", "subsets": [{"name": "v1"}]}
    assert patched.metadata is not None and patched.metadata.generation == 2
    status = client.patch(
        DR.Status, "r", {"status": {"observedGeneration": 2}}, patch_type=PatchType.MERGE
    )
    assert status.status == {"observedGeneration": 2}
    with pytest.raises(ApiError) as err:  # no strategic merge schema for custom kinds
        client.patch(DR, "r", {"spec": {"host": "x"}}, patch_type=PatchType.STRATEGIC)
    assert err.value.status.code == 415
    assert [d.metadata.name for d in client.list(DR) if d.metadata] == ["r"]
    client.delete(DR, "r")
    assert list(client.list(DR)) == []


def test_lease_updates_are_preconditioned(client: Client) -> None:
    lease = client.create(
        Lease.from_dict(
            {
                "metadata": {"name": "shoal-leader"},
                "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
            }
        )
    )
    assert lease.spec is not None
    lease.spec.holderIdentity = "b"
    taken = client.replace(lease)
    assert taken.spec is not None and taken.spec.holderIdentity == "b"
    lease.spec.holderIdentity = "c"  # still carries the old resourceVersion
    with pytest.raises(ApiError) as err:
        client.replace(lease)
    assert err.value.status.code == 409


async def test_async_client_on_the_servers_loop(tmp_path: Path) -> None:
    async with KubeAPIServer() as api:
        config = write_kubeconfig(tmp_path / "kc", api.url)
        client = AsyncClient(KubeConfig.from_file(config), namespace="default")
        try:
            await client.create(_cm("a"))
            listing = client.list(ConfigMap)
            names = [c.metadata.name async for c in listing if c.metadata]
            assert names == ["a"]
            await client.create(_cm("b"))
            events: list[Any] = []
            async for type_, obj in client.watch(
                ConfigMap, resource_version=listing.resourceVersion
            ):
                events.append((type_, obj.metadata.name))
                break
            assert events == [("ADDED", "b")]
        finally:
            await client.close()
