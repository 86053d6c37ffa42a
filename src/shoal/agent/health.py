"""The agent's health endpoint (Istio's 15021 `/healthz/ready`): ready when Envoy is.

`GET /debug/envoy` tells which Envoy runs (epoch, pid, base id, draining epochs, binary);
`POST /reload` hot-restarts it (what `shoal agent reload` calls) and answers once the new
epoch is LIVE, or with the reason it was refused. Only loopback peers may reload: in a pod
the port is open to the network for the kubelet's probes, and a restart per request would be
a cheap way to hurt the proxy. In secure mode `/debug/certs` adds the workload certificate's
public facts (serial, expiry, renewals); never the key.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from shoal.agent.options import OptionsError
from shoal.agent.process import EnvoyProcess, RestartError

if TYPE_CHECKING:
    from shoal.agent.reload import Reloader


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def start_health(
    envoy: EnvoyProcess,
    host: str,
    port: int,
    *,
    certs: Callable[[], object] | None = None,
    reloader: Reloader | None = None,
) -> web.AppRunner:
    async def ready(_: web.Request) -> web.Response:
        if await envoy.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="envoy not ready\n")

    async def live(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def debug_envoy(_: web.Request) -> web.Response:
        out = envoy.describe()
        if reloader is not None:
            out["options_file"] = str(reloader.options_file) if reloader.options_file else None
            out["last_error"] = reloader.last_error
        return web.json_response(out)

    app = web.Application()
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/healthz/live", live)
    app.router.add_get("/debug/envoy", debug_envoy)
    if reloader is not None:
        hot = reloader

        async def reload(request: web.Request) -> web.Response:
            if not _loopback(request):
                return web.json_response({"error": "reload only from loopback"}, status=403)
            try:
                # shielded: a client that gives up must not cancel a hand-over half-way
                result = await asyncio.shield(hot.reload())
            except (OptionsError, RestartError) as err:
                hot.last_error = str(err)
                return web.json_response({"error": str(err)}, status=409)
            assert result is not None
            return web.json_response(result.as_dict())

        app.router.add_post("/reload", reload)
    if certs is not None:
        describe = certs

        async def debug_certs(_: web.Request) -> web.Response:
            return web.json_response(describe())

        app.router.add_get("/debug/certs", debug_certs)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
