"""The control plane's admin HTTP API: readiness, sync status, config errors, the dashboard.

`/debug/syncz` is a contract (DESIGN.md): one object per connected proxy with, per xDS type,
the last version sent and ACKed and the last NACK's error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import prometheus_client
from aiohttp import web

from shoal.controlplane import dashboard, diffview
from shoal.controlplane.testhooks import poison_view
from shoal.telemetry import discovery

if TYPE_CHECKING:
    from shoal.controlplane.app import ControlPlane


def metrics_targets(cp: ControlPlane) -> list[discovery.ProxyTarget]:
    """Every connected proxy that serves metrics (Prometheus service discovery)."""
    out = []
    for conn in cp.ads.connections.values():
        p = conn.proxy
        if p is None or p.prometheus_port is None:
            continue
        out.append(
            discovery.ProxyTarget(
                node=p.node_id,
                host=p.instance_ips[0] if p.instance_ips else p.ip,
                port=p.prometheus_port,
                namespace=p.namespace,
                workload=p.workload_name,
                labels=p.labels,
                kind=p.type,
            )
        )
    return out


def _app(cp: ControlPlane) -> web.Application:
    async def ready(_: web.Request) -> web.Response:
        if cp.snapshot is None:
            return web.Response(status=503, text="no snapshot yet\n")
        return web.Response(text="ok\n")

    async def syncz(_: web.Request) -> web.Response:
        return web.json_response(cp.ads.syncz())

    async def config(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": cp.snapshot.version if cp.snapshot else None,
                "resources": len(cp.store.resources),
                "instances": len(cp.instances),
                "services": len(cp.snapshot.services) if cp.snapshot else 0,
                "errors": [e.to_json() for e in cp.errors],
                # weighted destinations without endpoints: their share goes to the others
                # (MeshConfig skipEmptyDestinations, generate/emptydest.py)
                "empty_destinations": sorted(
                    cp.pipeline.generation.empty_destinations if cp.pipeline.generation else ()
                ),
            }
        )

    async def poison(request: web.Request) -> web.Response:
        cp.ads.view_filter = poison_view if request.method == "POST" else None
        generation = cp.pipeline.generation
        if generation is not None:
            cp.ads.update(generation)  # every view filtered anew (no push request: all)
        return web.Response(text="ok\n")

    async def metrics(_: web.Request) -> web.Response:
        body = prometheus_client.generate_latest(cp.ads.metrics.registry)
        return web.Response(
            body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    async def prometheus_sd(_: web.Request) -> web.Response:
        return web.json_response(discovery.target_groups(metrics_targets(cp)))

    async def extra(request: web.Request) -> web.Response:
        view = cp.debug_views.get(request.match_info["name"])
        if view is None:
            raise web.HTTPNotFound(text="no such debug view\n")
        return web.json_response(view())

    app = web.Application()
    app.router.add_get("/ready", ready)
    app.router.add_get("/debug/syncz", syncz)
    app.router.add_get("/debug/config", config)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/debug/prometheus_sd", prometheus_sd)
    diffview.setup(app, cp)  # POST /debug/diff (`shoal diff`)
    app.router.add_get("/debug/{name}", extra)
    # the web dashboard (`shoal dashboard`): its page and JSON under /dashboard/
    dashboard.setup(app, cp, dashboard.Sampler(lambda: metrics_targets(cp)))
    if cp.settings.test_hooks:
        app.router.add_post("/debug/test/poison", poison)
        app.router.add_delete("/debug/test/poison", poison)
    return app


async def start_admin(cp: ControlPlane, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(_app(cp), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
