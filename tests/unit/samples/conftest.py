"""Sample services on 127.0.0.1:0 for the samples tests, always stopped at teardown.

HTTP_PROXY is removed so the services call each other directly by URL, as they would through
a sidecar but without one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from shoal.samples._serve import start
from shoal.samples.knobs import Knobs
from shoal.samples.service import Identity, SampleService

StartApp = Callable[[web.Application], Awaitable[str]]
StartService = Callable[..., Awaitable[tuple[SampleService, str]]]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """Serve an aiohttp app on a free loopback port; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def _start(app: web.Application) -> str:
        runner, port = await start(app, "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield _start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
def start_service(start_app: StartApp) -> StartService:
    """Start a SampleService (name, version, **knob overrides); returns it and its base URL."""

    async def _start(
        name: str = "svc", version: str = "v1", **knobs: object
    ) -> tuple[SampleService, str]:
        service = SampleService(
            Identity(name, version, f"{name}-{version}-0"),
            Knobs(**knobs),  # type: ignore[arg-type]
        )
        return service, await start_app(service.app())

    return _start
