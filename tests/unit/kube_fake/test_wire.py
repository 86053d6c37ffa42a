"""The fake API server's wire contract, request by request (what kubectl does not cover).

Metadata and errors, optimistic concurrency, paged lists as consistent snapshots, watch
replay, 410 Expired, bookmarks, watch-list, selector transitions on watches, the status
subresource, finalizers, TokenReview and the injectable faults.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from harness.kubeapi import KubeAPIServer

from .wire import Wire, cm

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def api() -> AsyncIterator[KubeAPIServer]:
    async with KubeAPIServer() as server:
        yield server


@pytest.fixture
async def wire(api: KubeAPIServer) -> AsyncIterator[Wire]:
    async with aiohttp.ClientSession() as session:
        yield Wire(session, api.url)


async def _collect(wire: Wire, path: str, n: int, within: float = 5) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def run() -> None:
        async for ev in wire.watch(path):
            out.append(ev)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), within)
    return out


async def test_create_get_and_errors_are_kubernetes_shaped(wire: Wire) -> None:
    created = await wire.ok("POST", CMS, cm("a", x="1"))
    meta = created["metadata"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["creationTimestamp"]
    assert int(meta["resourceVersion"]) > 0
    assert "generation" not in meta  # ConfigMaps have none; Deployments and CRs do
    status, body = await wire.call("POST", CMS, cm("a"))
    assert status == 409
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "a" already exists'
    assert body["details"] == {"name": "a", "kind": "configmaps"}
    status, body = await wire.call("GET", CMS + "/nope")
    assert (status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'configmaps "nope" not found',
    )
    status, body = await wire.call("POST", "/api/v1/namespaces/nowhere/configmaps", cm("a"))
    assert (status, body["message"]) == (404, 'namespaces "nowhere" not found')
    status, body = await wire.call("POST", CMS, {"kind": "ConfigMap", "metadata": {}})
    assert (status, body["reason"]) == (422, "Invalid")
    named = await wire.ok("POST", CMS, {"metadata": {"generateName": "gen-"}})
    assert named["metadata"]["name"].startswith("gen-") and len(named["metadata"]["name"]) == 9


async def test_put_with_a_stale_resource_version_is_a_conflict(wire: Wire) -> None:
    first = await wire.ok("POST", CMS, cm("a", x="1"))
    second = await wire.ok("PUT", CMS + "/a", {**first, "data": {"x": "2"}})
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    status, body = await wire.call("PUT", CMS + "/a", {**first, "data": {"x": "3"}})
    assert (status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    # Without a resourceVersion the update is unconditional.
    unconditional = {**second, "metadata": {"name": "a"}, "data": {"x": "4"}}
    assert (await wire.ok("PUT", CMS + "/a", unconditional))["data"] == {"x": "4"}
    status, body = await wire.call("PUT", CMS + "/missing", cm("missing"))
    assert status == 404


async def test_patch_types(wire: Wire, api: KubeAPIServer) -> None:
    await wire.ok("POST", CMS, cm("a", x="1", y="2"))
    out = await wire.ok(
        "PATCH",
        CMS + "/a",
        {"data": {"y": None, "z": "3"}},
        content_type="application/merge-patch+json",
    )
    assert out["data"] == {"x": "1", "z": "3"}
    out = await wire.ok(
        "PATCH",
        CMS + "/a",
        [{"op": "remove", "path": "/data/x"}],
        content_type="application/json-patch+json",
    )
    assert out["data"] == {"z": "3"}
    out = await wire.ok(
        "PATCH",
        CMS + "/a",
        {"metadata": {"finalizers": ["a.io/x"]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert out["metadata"]["finalizers"] == ["a.io/x"]
    status, body = await wire.call(
        "PATCH", CMS + "/a", {}, content_type="application/apply-patch+yaml"
    )
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"q": "1"}}
    status, _ = await wire.call(
        "PATCH", CMS + "/a", stale, content_type="application/merge-patch+json"
    )
    assert status == 409


async def test_paged_list_is_a_consistent_snapshot(wire: Wire) -> None:
    for name in "abcde":
        await wire.ok("POST", CMS, cm(name))
    page = await wire.ok("GET", CMS + "?limit=2")
    assert page["kind"] == "ConfigMapList" and page["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in page["items"]] == ["a", "b"]
    assert "kind" not in page["items"][0]  # built-in list items carry no kind, as on the wire
    assert page["metadata"]["remainingItemCount"] == 3
    list_rv = page["metadata"]["resourceVersion"]
    # Changes after the first page do not show in the later ones.
    await wire.ok("DELETE", CMS + "/d")
    await wire.ok("POST", CMS, cm("ca"))
    names = [i["metadata"]["name"] for i in page["items"]]
    while page["metadata"].get("continue"):
        page = await wire.ok("GET", CMS + f"?limit=2&continue={page['metadata']['continue']}")
        assert page["metadata"]["resourceVersion"] == list_rv
        names += [i["metadata"]["name"] for i in page["items"]]
    assert names == ["a", "b", "c", "d", "e"]
    now = await wire.ok("GET", CMS)
    assert [i["metadata"]["name"] for i in now["items"]] == ["a", "b", "c", "ca", "e"]


async def test_continue_token_expires_with_history(wire: Wire, api: KubeAPIServer) -> None:
    for name in "abc":
        await wire.ok("POST", CMS, cm(name))
    page = await wire.ok("GET", CMS + "?limit=1")
    await wire.ok("POST", CMS, cm("d"))
    api.compact()
    status, body = await wire.call("GET", CMS + f"?limit=1&continue={page['metadata']['continue']}")
    assert (status, body["reason"]) == (410, "Expired")


async def test_watch_replays_from_a_resource_version_then_follows(wire: Wire) -> None:
    first = await wire.ok("POST", CMS, cm("a", x="1"))
    rv = first["metadata"]["resourceVersion"]
    await wire.ok(
        "PATCH", CMS + "/a", {"data": {"x": "2"}}, content_type="application/merge-patch+json"
    )
    await wire.ok("POST", CMS, cm("b"))

    async def later() -> None:
        await asyncio.sleep(0.2)
        await wire.ok("DELETE", CMS + "/b")

    task = asyncio.create_task(later())
    events = await _collect(wire, CMS + f"?watch=true&resourceVersion={rv}", 3)
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "b"),
    ]
    assert events[0]["object"]["kind"] == "ConfigMap"  # watch events do carry kind
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # No resourceVersion (or "0"): the current objects as ADDED first.
    events = await _collect(wire, CMS + "?watch=True&resourceVersion=0", 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["data"] == {"x": "2"}


async def test_watch_from_a_version_off_the_ring_is_410_expired(
    wire: Wire, api: KubeAPIServer
) -> None:
    first = await wire.ok("POST", CMS, cm("a"))
    api.set_history_size(2)
    for n in range(3):
        await wire.ok("POST", CMS, cm(f"b{n}"))
    rv = first["metadata"]["resourceVersion"]
    events = await _collect(wire, CMS + f"?watch=1&resourceVersion={rv}", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"
    assert events[0]["object"]["kind"] == "Status"


async def test_bookmarks_only_when_allowed_and_timeout_ends_cleanly(
    wire: Wire, api: KubeAPIServer
) -> None:
    api.settings.bookmark_interval = 0.2
    await wire.ok("POST", CMS, cm("a"))
    rv = api.store.rv
    start = time.monotonic()
    events = [
        e
        async for e in wire.watch(
            CMS + f"?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
        )
    ]
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 3
    assert events and {e["type"] for e in events} == {"BOOKMARK"}
    assert events[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(rv), "creationTimestamp": None},
    }
    events = [
        e async for e in wire.watch(CMS + f"?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    ]
    assert events == []


async def test_watch_list_ends_initial_events_with_an_annotated_bookmark(wire: Wire) -> None:
    await wire.ok("POST", CMS, cm("a"))
    await wire.ok("POST", CMS, cm("b"))
    events = await _collect(
        wire,
        CMS + "?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan",
        3,
    )
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    status, body = await wire.call("GET", CMS + "?watch=true&sendInitialEvents=true")
    assert (status, body["reason"]) == (422, "Invalid")


async def test_selectors_on_watch_turn_relabels_into_added_and_deleted(wire: Wire) -> None:
    await wire.ok("POST", CMS, cm("a", {"app": "x"}))
    await wire.ok("POST", CMS, cm("b", {"app": "x"}))

    async def relabel() -> None:
        await asyncio.sleep(0.2)
        for value in ("y", "x"):
            await wire.ok(
                "PATCH",
                CMS + "/a",
                {"metadata": {"labels": {"app": value}}},
                content_type="application/merge-patch+json",
            )
        await wire.ok(
            "PATCH", CMS + "/b", {"data": {"k": "v"}}, content_type="application/merge-patch+json"
        )

    task = asyncio.create_task(relabel())
    path = CMS + "?watch=true&labelSelector=app+in+(x)&fieldSelector=metadata.name%3Da"
    events = await _collect(wire, path, 3)
    await task
    assert [(e["type"], e["object"]["metadata"]["labels"]["app"]) for e in events] == [
        ("ADDED", "x"),
        ("DELETED", "y"),
        ("ADDED", "x"),
    ]


async def test_status_subresource_splits_writes(wire: Wire) -> None:
    deploys = "/apis/apps/v1/namespaces/default/deployments"
    body = {"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 9}}
    created = await wire.ok("POST", deploys, body)
    assert "replicas" not in (created.get("status") or {})
    assert created["metadata"]["generation"] == 1
    out = await wire.ok(
        "PUT",
        deploys + "/d/status",
        {**created, "spec": {"replicas": 5}, "status": {"replicas": 3}},
    )
    assert out["status"] == {"replicas": 3} and out["spec"]["replicas"] == 1
    assert out["metadata"]["generation"] == 1
    out = await wire.ok(
        "PATCH",
        deploys + "/d",
        {"spec": {"replicas": 2}, "status": {"replicas": 7}},
        content_type="application/merge-patch+json",
    )
    assert out["status"] == {"replicas": 3} and out["spec"]["replicas"] == 2
    assert out["metadata"]["generation"] == 2
    status, _ = await wire.call("GET", CMS + "/x/status")
    assert status == 404  # ConfigMaps have no status subresource


async def test_finalizers_hold_deletion_until_removed(wire: Wire) -> None:
    await wire.ok("POST", CMS, {**cm("a"), "metadata": {"name": "a", "finalizers": ["x/y"]}})
    held = await wire.ok(
        "DELETE",
        CMS + "/a",
        {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
    )
    assert held["metadata"]["deletionTimestamp"]
    assert (await wire.ok("GET", CMS + "/a"))["metadata"]["deletionTimestamp"]
    gone = await wire.ok(
        "PATCH",
        CMS + "/a",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert "finalizers" not in gone["metadata"]  # the last write, then removal
    status, _ = await wire.call("GET", CMS + "/a")
    assert status == 404
    await wire.ok("POST", CMS, cm("b"))
    status, body = await wire.call("DELETE", CMS + "/b", {"preconditions": {"uid": "other"}})
    assert (status, body["reason"]) == (409, "Conflict")
    done = await wire.ok("DELETE", CMS + "/b")
    assert done["kind"] == "Status" and done["status"] == "Success"


async def test_discovery_documents(wire: Wire) -> None:
    core = await wire.ok("GET", "/api/v1")
    assert core["groupVersion"] == "v1"
    assert {"services", "pods", "pods/status", "serviceaccounts/token"} <= {
        r["name"] for r in core["resources"]
    }
    groups = await wire.ok("GET", "/apis")
    names = [g["name"] for g in groups["groups"]]
    assert {
        "apps",
        "discovery.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "authentication.k8s.io",
        "apiextensions.k8s.io",
    } <= set(names)
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    async with wire.session.get(wire.base + "/apis", headers={"Accept": accept}) as r:
        assert r.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
        agg = await r.json(content_type=None)
    assert agg["kind"] == "APIGroupDiscoveryList"
    slices = next(i for i in agg["items"] if i["metadata"]["name"] == "discovery.k8s.io")
    assert slices["versions"][0]["resources"][0]["resource"] == "endpointslices"
    version = await wire.ok("GET", "/version/")
    assert version["major"] == "1"


async def test_tokenreview_checks_token_audience_and_bound_pod(
    wire: Wire, api: KubeAPIServer
) -> None:
    pod = await wire.ok(
        "POST",
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}},
    )
    assert pod["spec"]["serviceAccountName"] == "default"
    req = await wire.ok(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        {
            "spec": {
                "audiences": ["istio-ca"],
                "expirationSeconds": 600,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": "p",
                    "uid": pod["metadata"]["uid"],
                },
            }
        },
    )
    token = req["status"]["token"]
    reviews = "/apis/authentication.k8s.io/v1/tokenreviews"

    async def review(audiences: list[str]) -> dict[str, Any]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences},
        }
        return (await wire.ok("POST", reviews, body))["status"]

    ok = await review(["istio-ca"])
    assert ok["authenticated"] is True
    assert ok["user"]["username"] == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in ok["user"]["groups"]
    assert ok["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    assert ok["audiences"] == ["istio-ca"]
    wrong = await review(["other"])
    assert wrong["authenticated"] is False and "audiences" in wrong["error"]
    await wire.ok("DELETE", "/api/v1/namespaces/default/pods/p")
    assert (await review(["istio-ca"]))["authenticated"] is False
    api.add_token("static", "alice", ("devs",), ("aud",))
    token = "static"
    assert (await review(["aud"]))["user"] == {"username": "alice", "groups": ["devs"]}


async def test_injected_errors_delays_and_auth(wire: Wire, api: KubeAPIServer) -> None:
    api.fail_requests(count=2, code=500, method="GET", path="configmaps")
    for _ in range(2):
        status, body = await wire.call("GET", CMS)
        assert (status, body["reason"]) == (500, "InternalError")
    assert (await wire.call("GET", CMS))[0] == 200
    api.delay_requests(0.3, count=1)
    start = time.monotonic()
    await wire.ok("GET", CMS)
    assert time.monotonic() - start >= 0.3
    api.settings.require_auth = True
    assert (await wire.call("GET", CMS))[0] == 401
    api.add_token("t", "bob")
    assert (await wire.call("GET", CMS, headers={"Authorization": "Bearer t"}))[0] == 200


async def test_dropped_expired_and_ended_watches(wire: Wire, api: KubeAPIServer) -> None:
    path = CMS + f"?watch=true&resourceVersion={api.store.rv}"

    async def open_then(action: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        async def reader() -> None:
            async for ev in wire.watch(path):
                events.append(ev)

        task = asyncio.create_task(reader())
        for _ in range(500):
            if api.streams:
                break
            await asyncio.sleep(0.01)
        action()
        await asyncio.wait_for(task, 5)
        return events

    assert await open_then(api.end_watches) == []
    events = await open_then(api.expire_watches)
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]
    with pytest.raises(aiohttp.ClientPayloadError):
        await open_then(api.drop_watches)


async def test_scale_subresource_of_a_crd(wire: Wire) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.x.io"},
        "spec": {
            "group": "x.io",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {
                "scale": {"specReplicasPath": ".spec.count", "statusReplicasPath": ".status.count",
                          "labelSelectorPath": ".status.selector"}}}],
        },
    }  # fmt: skip
    await wire.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    widgets = "/apis/x.io/v1/namespaces/default/widgets"
    await wire.ok("POST", widgets, {"metadata": {"name": "w"}, "spec": {"count": 1},
                                    "status": {"selector": "app=w"}})  # fmt: skip
    scale = await wire.ok("GET", widgets + "/w/scale")
    assert scale["spec"] == {"replicas": 1} and scale["status"]["selector"] == "app=w"
    out = await wire.ok("PATCH", widgets + "/w/scale", {"spec": {"replicas": 4}},
                        content_type="application/merge-patch+json")  # fmt: skip
    assert out["spec"] == {"replicas": 4}
    assert (await wire.ok("GET", widgets + "/w"))["spec"] == {"count": 4}
    status, body = await wire.call("PUT", widgets + "/w/scale", scale)  # the old RV
    assert (status, body["reason"]) == (409, "Conflict")


async def test_dry_run_deletecollection_and_accept(wire: Wire, api: KubeAPIServer) -> None:
    rv = api.store.rv
    out = await wire.ok("POST", CMS + "?dryRun=All", cm("dry"))
    assert out["metadata"]["name"] == "dry"
    assert (await wire.call("GET", CMS + "/dry"))[0] == 404 and api.store.rv == rv
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        await wire.ok("POST", CMS, cm(name, {"app": app}))
    await wire.ok("DELETE", CMS + "?labelSelector=app%3Dx")
    left = await wire.ok("GET", CMS)
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]
    status, body = await wire.call(
        "GET", CMS, headers={"Accept": "application/vnd.kubernetes.protobuf"}
    )
    assert (status, body["reason"]) == (406, "NotAcceptable")


async def test_watch_of_one_object_by_path(wire: Wire) -> None:
    await wire.ok("POST", CMS, cm("a"))
    await wire.ok("POST", CMS, cm("b"))
    events = await _collect(wire, CMS + "/b?watch=true", 1)
    assert [e["object"]["metadata"]["name"] for e in events] == ["b"]
    events = await _collect(wire, "/api/v1/watch/namespaces/default/configmaps/a", 1)
    assert [e["object"]["metadata"]["name"] for e in events] == ["a"]


async def test_namespace_deletion_waits_for_its_contents_finalizers(wire: Wire) -> None:
    await wire.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "gone"}})
    sa = await wire.ok("GET", "/api/v1/namespaces/gone/serviceaccounts/default")
    assert sa["metadata"]["uid"]  # made by the "controller", as in a cluster
    held = {"metadata": {"name": "held", "finalizers": ["x/y"]}}
    await wire.ok("POST", "/api/v1/namespaces/gone/configmaps", held)
    await wire.ok("POST", "/api/v1/namespaces/gone/configmaps", cm("free"))
    ns = await wire.ok("DELETE", "/api/v1/namespaces/gone")
    assert ns["status"]["phase"] == "Terminating"
    names = await wire.ok("GET", "/api/v1/namespaces/gone/configmaps")
    assert [i["metadata"]["name"] for i in names["items"]] == ["held"]
    status, body = await wire.call("POST", "/api/v1/namespaces/gone/configmaps", cm("new"))
    assert (status, body["reason"]) == (403, "Forbidden")
    await wire.ok("PATCH", "/api/v1/namespaces/gone/configmaps/held",
                  {"metadata": {"finalizers": None}},
                  content_type="application/merge-patch+json")  # fmt: skip
    assert (await wire.call("GET", "/api/v1/namespaces/gone"))[0] == 404


async def test_graceful_pod_deletion_waits_for_the_kubelet(wire: Wire, api: KubeAPIServer) -> None:
    api.settings.graceful_pod_deletion = True
    pods = "/api/v1/namespaces/default/pods"
    spec = {"nodeName": "node-1", "containers": [{"name": "c"}]}
    await wire.ok("POST", pods, {"metadata": {"name": "on-node"}, "spec": spec})
    await wire.ok("POST", pods, {"metadata": {"name": "unscheduled"}, "spec": {"containers": []}})
    await wire.ok("DELETE", pods + "/unscheduled")  # no node: gone at once
    assert (await wire.call("GET", pods + "/unscheduled"))[0] == 404
    terminating = await wire.ok("DELETE", pods + "/on-node")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await wire.ok("GET", pods + "/on-node"))["metadata"]["deletionTimestamp"]
    # What the kubelet sends once the containers stopped:
    await wire.ok("DELETE", pods + "/on-node", {"gracePeriodSeconds": 0})
    assert (await wire.call("GET", pods + "/on-node"))[0] == 404
