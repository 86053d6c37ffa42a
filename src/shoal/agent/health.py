"""The agent's health endpoint (Istio's 15021 `/healthz/ready`): ready when Envoy is."""

from __future__ import annotations

from aiohttp import web

from shoal.agent.process import EnvoyProcess


async def start_health(envoy: EnvoyProcess, host: str, port: int) -> web.AppRunner:
    async def ready(_: web.Request) -> web.Response:
        if await envoy.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="envoy not ready\n")

    async def live(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/healthz/live", live)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
