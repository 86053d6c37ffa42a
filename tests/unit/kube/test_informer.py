"""The informer against the fake API server over real HTTP: paged lists, watches with
bookmarks, relist-and-diff after 410, backoff through 500s and dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.kubeapi.server import KubeAPIServer
from harness.kubecp import fake_api, until
from shoal.kube.client import KubeClient
from shoal.kube.informer import Informer, InformerSettings
from shoal.kube.resources import ENDPOINT_SLICES, SERVICES, ResourceType
from shoal.kube.watchcache import ObjectEvent

FAST = InformerSettings(
    page_size=3, watch_timeout_s=(2.0, 3.0), backoff_initial_s=0.05, backoff_max_s=0.2
)


def _service(name: str, ns: str = "default", port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": port}]},
    }


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[ObjectEvent]] = []

    def __call__(self, rt: ResourceType, events: list[ObjectEvent]) -> None:
        self.batches.append(events)

    def seen(self, kind: str) -> list[str]:
        return [e.key[1] for b in self.batches for e in b if e.type == kind]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[KubeAPIServer, KubeClient]]:
    async with fake_api(tmp_path) as pair:
        yield pair


async def _running(informer: Informer) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(informer.synced.wait(), 10)
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_lists_in_pages_then_watches_from_the_lists_version(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    server, client = api
    svc = server.type("v1", "Service")
    for i in range(7):
        server.create(svc, _service(f"s{i}"))
    seen = Recorder()
    informer = Informer(client, SERVICES, seen, settings=FAST)
    task = await _running(informer)
    try:
        assert len(informer.cache) == 7
        lists = [p for m, p in server.requests if m == "GET" and "/services" in p]
        assert sum("continue=" in p for p in lists) == 2  # 3 + 3 + 1
        listed_rv = informer.cache.resource_version
        server.create(svc, _service("late"))
        await until(lambda: "late" in seen.seen("ADDED"))
        watch = next(p for m, p in server.requests if "watch=true" in p)
        assert f"resourceVersion={listed_rv}" in watch
        assert "allowWatchBookmarks=true" in watch
        server.store.remove(svc, "default", "s0")
        await until(lambda: "s0" in seen.seen("DELETED"))
        assert len(informer.cache) == 7
    finally:
        await _stop(task)


async def test_bookmarks_move_the_resource_version_on(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    server, client = api
    server.settings.bookmark_interval = 0.1
    informer = Informer(client, ENDPOINT_SLICES, Recorder(), settings=FAST)
    task = await _running(informer)
    try:
        before = informer.cache.resource_version
        # writes to another type move the global RV; only a bookmark tells this watch
        server.create(server.type("v1", "Service"), _service("elsewhere"))
        await until(lambda: informer.cache.resource_version != before)
        assert int(informer.cache.resource_version or 0) > int(before or 0)
        assert informer.stats.errors == 0
    finally:
        await _stop(task)


async def test_a_clean_end_of_the_watch_resumes_from_the_last_version(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    server, client = api
    svc = server.type("v1", "Service")
    seen = Recorder()
    informer = Informer(client, SERVICES, seen, settings=FAST)
    task = await _running(informer)
    try:
        await until(lambda: len(server.streams) == 1)
        server.end_watches()
        await until(lambda: informer.stats.watches == 2)
        server.create(svc, _service("after"))
        await until(lambda: "after" in seen.seen("ADDED"))
        assert informer.stats.lists == 1  # resumed, not relisted
    finally:
        await _stop(task)


async def test_after_410_a_relist_emits_deletes_for_what_vanished_meanwhile(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    server, client = api
    svc = server.type("v1", "Service")
    for name in ("keep", "doomed"):
        server.create(svc, _service(name))
    seen = Recorder()
    informer = Informer(client, SERVICES, seen, settings=FAST)
    task = await _running(informer)
    try:
        await until(lambda: len(server.streams) == 1)
        # the watch is cut; while it is down, one object goes and another comes, and the
        # history the informer would resume from is compacted away
        server.fail_requests(count=3, watch=True)
        server.drop_watches()
        server.store.remove(svc, "default", "doomed")
        server.create(svc, _service("newcomer"))
        server.compact()
        await until(lambda: "doomed" in seen.seen("DELETED"))
        assert "newcomer" in seen.seen("ADDED")
        assert informer.stats.relists_after_expiry >= 1
        assert sorted(k[1] for k in informer.cache.objects) == ["keep", "newcomer"]
    finally:
        await _stop(task)


async def test_an_expired_watch_error_event_makes_it_relist(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    server, client = api
    svc = server.type("v1", "Service")
    server.create(svc, _service("a"))
    seen = Recorder()
    informer = Informer(client, SERVICES, seen, settings=FAST)
    task = await _running(informer)
    try:
        await until(lambda: len(server.streams) == 1)
        server.expire_watches()
        await until(lambda: informer.stats.lists == 2)
        server.create(svc, _service("b"))
        await until(lambda: "b" in seen.seen("ADDED"))
    finally:
        await _stop(task)


async def test_errors_are_retried_with_backoff_until_the_server_answers(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    server, client = api
    server.create(server.type("v1", "Service"), _service("a"))
    server.fail_requests(count=4, method="GET", path="/api/v1/services")
    informer = Informer(client, SERVICES, Recorder(), settings=FAST)
    task = await _running(informer)
    try:
        assert informer.stats.errors == 4
        assert "500" in informer.stats.last_error
        assert len(informer.cache) == 1
    finally:
        await _stop(task)


async def test_a_kind_not_served_yet_counts_as_synced_and_empty(
    api: tuple[KubeAPIServer, KubeClient],
) -> None:
    _, client = api
    absent = ResourceType("networking.istio.io", "v1", "virtualservices", "VirtualService")
    informer = Informer(client, absent, Recorder(), settings=FAST)
    task = await _running(informer)
    try:
        assert not informer.served
        assert len(informer.cache) == 0
    finally:
        await _stop(task)
