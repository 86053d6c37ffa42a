"""The admission webhooks over HTTPS: `/inject` (sidecar injection) and `/validate`.

The API server POSTs an AdmissionReview v1 (`Content-Type: application/json`, anything else
gets 415) and gets one back (admission.py). Both webhooks are pure functions of the request
(inject*.py, validate.py), so every control-plane replica serves them from the same code
with no shared state. The serving certificate comes from the caller (the control plane
issues one from shoal's CA for the Service's DNS names).
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from shoal.kube import names
from shoal.kube.admission import AdmissionError, AdmissionRequest, allow, deny, parse_review
from shoal.kube.inject import InjectorSettings, injection_patch
from shoal.kube.inject_rules import injection_required
from shoal.kube.validate import is_supported, validate_object

log = logging.getLogger("shoal.kube.webhook")


@dataclass
class WebhookStats:
    """Counters shown in the control plane's debug views."""

    injected: int = 0
    skipped: int = 0
    validated: int = 0
    refused: int = 0
    last_refusal: str = ""


def inject_review(
    request: AdmissionRequest, settings: InjectorSettings
) -> tuple[dict[str, object], bool]:
    """The AdmissionReview answer for a pod, and whether it was injected."""
    if request.kind != "Pod" or request.operation not in ("CREATE", ""):
        return allow(request), False
    pod = dict(request.object)
    meta = dict(pod.get("metadata") or {})
    if request.namespace and not meta.get("namespace"):
        meta["namespace"] = request.namespace
    pod["metadata"] = meta
    wanted, why = injection_required(pod, settings.policy)
    if not wanted:
        log.debug(
            "not injecting %s/%s: %s",
            meta.get("namespace"),
            meta.get("name") or meta.get("generateName"),
            why,
        )
        return allow(request), False
    result = injection_patch(pod, settings)
    return allow(request, result.operations, result.warnings), bool(result.operations)


def validate_review(request: AdmissionRequest) -> tuple[dict[str, object], bool]:
    """The AdmissionReview answer for an Istio/shoal object, and whether it was refused."""
    if request.operation not in ("CREATE", "UPDATE", "") or not is_supported(
        request.kind, request.group
    ):
        return allow(request), False
    verdict = validate_object(request.object, request.namespace)
    if verdict.allowed:
        return allow(request), False
    return deny(request, verdict.message), True


def make_app(
    settings: InjectorSettings | None = None, stats: WebhookStats | None = None
) -> web.Application:
    """The webhook application."""
    injector = settings or InjectorSettings()
    counters = stats if stats is not None else WebhookStats()

    async def read(request: web.Request) -> AdmissionRequest | web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text="Content-Type must be application/json\n")
        try:
            return parse_review(json.loads(await request.read()))
        except (AdmissionError, ValueError) as err:
            return web.Response(status=400, text=f"{err}\n")

    async def inject(request: web.Request) -> web.Response:
        review = await read(request)
        if isinstance(review, web.Response):
            return review
        answer, injected = inject_review(review, injector)
        if injected:
            counters.injected += 1
        else:
            counters.skipped += 1
        return web.json_response(answer)

    async def validate(request: web.Request) -> web.Response:
        review = await read(request)
        if isinstance(review, web.Response):
            return review
        answer, refused = validate_review(review)
        counters.validated += 1
        if refused:
            counters.refused += 1
            response = answer.get("response")
            status = response.get("status") if isinstance(response, Mapping) else None
            if isinstance(status, Mapping):
                counters.last_refusal = str(status.get("message", ""))
        return web.json_response(answer)

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready\n")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post(names.INJECT_PATH, inject)
    app.router.add_post(names.VALIDATE_PATH, validate)
    app.router.add_get("/ready", ready)
    return app


async def start_webhooks(
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    settings: InjectorSettings | None = None,
    stats: WebhookStats | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve the webhooks on host:port (HTTPS when `tls` is given); returns the bound port."""
    runner = web.AppRunner(make_app(settings, stats), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    # the bound port, when 0 was asked for
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)
