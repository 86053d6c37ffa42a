"""The dashboard's sampler scrapes real HTTP metrics ports only while a page asks, keeps a
proxy's failure as an error, and separates two replicas' identical series."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from shoal.controlplane.dashboard import Sampler
from shoal.telemetry.discovery import ProxyTarget
from shoal.telemetry.scrape import PROXY_LABEL

LABELS = (
    'reporter="source",source_workload="frontend",source_workload_namespace="default",'
    'destination_workload="ratings",destination_workload_namespace="default",'
    'response_code="200"'
)


class MetricsPort:
    """A metrics port whose request counter grows by 10 at every scrape."""

    def __init__(self) -> None:
        self.hits = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.hits += 1
        text = (
            "# TYPE istio_requests_total counter\n"
            f"istio_requests_total{{{LABELS}}} {10 * self.hits}\n"
        )
        return web.Response(text=text)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[MetricsPort], Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(port: MetricsPort) -> int:
        app = web.Application()
        app.router.add_get("/stats/prometheus", port.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


async def _until(probe: Callable[[], bool]) -> None:
    """Generous (10 s): the machine may be loaded; the point is that it happens, not when."""
    for _ in range(500):
        if probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within 10 s")


def _target(port: int) -> ProxyTarget:
    return ProxyTarget(f"sidecar~127.0.0.1~p{port}.default~x", "127.0.0.1", port, "default",
                       "frontend", {}, "sidecar")  # fmt: skip


async def test_samples_while_watched_then_stops(serve: Callable[..., Awaitable[int]]) -> None:
    a, b = MetricsPort(), MetricsPort()
    ports = [await serve(a), await serve(b)]
    sampler = Sampler(lambda: [_target(p) for p in ports], interval_s=0.05, idle_s=0.5)
    try:
        sampler.touch()
        await _until(lambda: a.hits >= 3 and b.hits >= 3)
        (edge,) = sampler.history.graph().edges
        # both replicas' series counted, each as its own (the proxy label keeps them apart)
        assert edge.signals.rps is not None and edge.signals.rps > 0
        scrape = sampler.history._scrapes[-1]
        assert {s.labels[PROXY_LABEL] for s in scrape.samples} == {f"127.0.0.1:{p}" for p in ports}
        # nobody asked for 0.5 s: sampling stops
        await _until(lambda: sampler._task is not None and sampler._task.done())
        stopped = a.hits
        await asyncio.sleep(0.3)
        assert a.hits == stopped
        sampler.touch()  # a page is back: sampling again
        await _until(lambda: a.hits > stopped)
    finally:
        await sampler.close()


async def test_a_proxy_that_does_not_answer_is_an_error_not_a_stop(
    serve: Callable[..., Awaitable[int]],
) -> None:
    live = MetricsPort()
    port = await serve(live)
    other = await serve(MetricsPort())
    targets = [_target(port), _target(other)]
    sampler = Sampler(lambda: targets, interval_s=0.05, idle_s=5, timeout_s=0.5)
    try:
        sampler.touch()
        await _until(lambda: live.hits >= 2)
        targets[1] = _target(1)  # nothing listens on port 1
        await _until(lambda: "127.0.0.1:1" in sampler.errors)
        before = live.hits
        await _until(lambda: live.hits > before)  # the others are still read
    finally:
        await sampler.close()


async def test_past_max_proxies_the_rest_go_unread_and_are_counted(
    serve: Callable[[MetricsPort], Awaitable[int]],
) -> None:
    ports = [MetricsPort() for _ in range(3)]
    numbers = [await serve(p) for p in ports]
    sampler = Sampler(lambda: [_target(n) for n in numbers], interval_s=0.05, max_proxies=2)
    try:
        sampler.touch()
        await _until(lambda: sum(p.hits > 0 for p in ports) == 2)
        await asyncio.sleep(0.2)
        assert sum(p.hits > 0 for p in ports) == 2 and sampler.unsampled == 1
    finally:
        await sampler.close()
