"""The web dashboard on the admin port: `/dashboard/` (a static page) and its JSON API.

The page (controlplane/dashboard_static/, plain HTML/JS/SVG, no build step) polls
`/dashboard/api/overview` -- the service graph, every proxy's sync state and every config
error -- and `/dashboard/api/workload/NS/NAME` for one workload's signals over time.

Rates need scrapes over time, so the control plane scrapes every proxy's metrics port itself
(the proxies Prometheus discovery lists), every `interval_s`, but only while a page asks:
scraping stops `idle_s` after the last API request, so a control plane nobody watches pays
nothing. What it keeps is bounded (telemetry/history.py), and so is the number of proxies
it reads (`max_proxies`). Aggregation is pure
(telemetry/graph.py, history.py, syncview.py); this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from shoal.telemetry import graph, syncview
from shoal.telemetry.discovery import METRICS_PATH, ProxyTarget
from shoal.telemetry.history import History
from shoal.telemetry.promtext import Sample, parse
from shoal.telemetry.scrape import PROXY_LABEL

if TYPE_CHECKING:
    from shoal.controlplane.app import ControlPlane

log = logging.getLogger("shoal.controlplane.dashboard")

STATIC = MappingProxyType(
    {
        "index.html": "text/html",
        "dashboard.js": "text/javascript",
        "dashboard.css": "text/css",
    }
)


class Sampler:
    """Scrapes every proxy while the dashboard is watched, into a bounded `History`."""

    def __init__(
        self,
        targets: Callable[[], Sequence[ProxyTarget]],
        *,
        interval_s: float = 1.0,
        idle_s: float = 60.0,
        timeout_s: float = 2.0,
        max_proxies: int = 200,
    ) -> None:
        self.targets = targets
        # a bound on the scraping and on what history keeps: beyond it, proxies go unread
        # (the first ones by node id are read; the page says how many were left out)
        self.max_proxies = max_proxies
        self.unsampled = 0
        self.interval_s = interval_s
        self.idle_s = idle_s
        self.timeout_s = timeout_s
        self.history = History()
        self.errors: dict[str, str] = {}  # proxy address -> why its last scrape failed
        self._watched_until = 0.0
        self._task: asyncio.Task[None] | None = None

    def touch(self) -> None:
        """A page asked: keep (or start) sampling for another `idle_s`."""
        self._watched_until = time.monotonic() + self.idle_s
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self, _app: object = None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < self._watched_until:
                started = time.monotonic()
                try:
                    await self.sample(session)
                except Exception:  # a bug here must not end the sampling for good
                    log.exception("dashboard scrape failed")
                await asyncio.sleep(max(0.1, self.interval_s - (time.monotonic() - started)))

    async def sample(self, session: aiohttp.ClientSession) -> None:
        every = sorted(self.targets(), key=lambda t: t.node)
        targets = every[: self.max_proxies]
        self.unsampled = len(every) - len(targets)
        texts = await asyncio.gather(*(self._get(session, t) for t in targets))
        # parsing is pure Python: off the event loop, so xDS streams are not held up
        samples = await asyncio.to_thread(_parse_all, targets, texts)
        self.history.add(time.time(), samples)

    async def _get(self, session: aiohttp.ClientSession, t: ProxyTarget) -> str | None:
        address = f"{t.host}:{t.port}"
        try:
            async with session.get(f"http://{address}{METRICS_PATH}") as resp:
                resp.raise_for_status()
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            self.errors[address] = str(err) or type(err).__name__
            return None
        self.errors.pop(address, None)
        return text


def _parse_all(targets: Sequence[ProxyTarget], texts: Sequence[str | None]) -> list[Sample]:
    out: list[Sample] = []
    for t, text in zip(targets, texts, strict=True):
        if text is None:
            continue
        try:
            parsed = parse(text)
        except ValueError:
            continue
        address = f"{t.host}:{t.port}"
        # the proxy as a label: two replicas' identical series stay apart (golden.increase)
        out.extend(Sample(s.name, {**s.labels, PROXY_LABEL: address}, s.value) for s in parsed)
    return out


def _proxies(cp: ControlPlane) -> list[graph.Proxy]:
    return [
        graph.Proxy(c.proxy.namespace, c.proxy.workload_name, str(c.proxy.type))
        for c in cp.ads.connections.values()
        if c.proxy is not None
    ]


def overview(cp: ControlPlane, sampler: Sampler) -> dict[str, object]:
    table = syncview.rows(cp.ads.syncz())
    return {
        "version": cp.snapshot.version if cp.snapshot else None,
        "sampled_at": sampler.history.latest,
        "graph": sampler.history.graph(_proxies(cp)).to_json(),
        "sync": {"types": syncview.types_seen(table), "rows": table},
        "errors": [e.to_json() for e in cp.errors],
        "scrape_errors": dict(sorted(sampler.errors.items())),
        "unsampled": sampler.unsampled,
    }


def workload(cp: ControlPlane, sampler: Sampler, wid: str) -> dict[str, object]:
    g = sampler.history.graph(_proxies(cp))
    node = next((n for n in g.nodes if n.id == wid), None)
    namespace, _, name = wid.partition("/")
    return {
        "id": wid,
        "node": node.to_json() if node is not None else None,
        "window_s": g.window_s,
        "points": [p.to_json() for p in sampler.history.series(wid)],
        "inbound": [e.to_json() for e in g.edges if e.dst == wid],
        "outbound": [e.to_json() for e in g.edges if e.src == wid],
        "proxies": [
            r
            for r in syncview.rows(cp.ads.syncz())
            if r["namespace"] == namespace and r["workload"] == name
        ],
    }


def setup(app: web.Application, cp: ControlPlane, sampler: Sampler) -> None:
    """Add the dashboard's routes to the admin application."""
    files = importlib.resources.files("shoal.controlplane") / "dashboard_static"

    async def index(_: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard/")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info.get("name") or "index.html"
        if name not in STATIC:
            raise web.HTTPNotFound(text="no such file\n")
        body = (files / name).read_bytes()
        return web.Response(
            body=body, content_type=STATIC[name], headers={"Cache-Control": "no-store"}
        )

    async def api_overview(_: web.Request) -> web.Response:
        sampler.touch()
        return web.json_response(overview(cp, sampler))

    async def api_workload(request: web.Request) -> web.Response:
        sampler.touch()
        wid = f"{request.match_info['namespace']}/{request.match_info['name']}"
        return web.json_response(workload(cp, sampler, wid))

    app.router.add_get("/dashboard", index)
    app.router.add_get("/dashboard/", static)
    app.router.add_get("/dashboard/{name}", static)
    app.router.add_get("/dashboard/api/overview", api_overview)
    app.router.add_get("/dashboard/api/workload/{namespace}/{name}", api_workload)
    app.on_cleanup.append(sampler.close)
