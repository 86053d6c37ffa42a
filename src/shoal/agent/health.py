"""The agent's health endpoint (Istio's 15021 `/healthz/ready`): ready when Envoy is.

In secure mode `/debug/certs` adds the workload certificate's public facts (serial, expiry,
renewals); never the key.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from shoal.agent.process import EnvoyProcess


async def start_health(
    envoy: EnvoyProcess, host: str, port: int, *, certs: Callable[[], object] | None = None
) -> web.AppRunner:
    async def ready(_: web.Request) -> web.Response:
        if await envoy.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="envoy not ready\n")

    async def live(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/healthz/live", live)
    if certs is not None:
        describe = certs

        async def debug_certs(_: web.Request) -> web.Response:
            return web.json_response(describe())

        app.router.add_get("/debug/certs", debug_certs)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
