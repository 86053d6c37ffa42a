"""One configurable HTTP service for the demo mesh: a backend, or a frontend calling others.

Run as `python -m shoal.samples.service [flags]`. Every response is JSON naming who answered
(service, version, replica) and what it called, so a request's path through the mesh can be
read off one response. Faults (error rate, added latency) are knobs that can be changed while
it runs (`POST /admin/knobs`, `POST /admin/blowup`) to watch the mesh react.

Upstream calls go through HTTP_PROXY (the sidecar's outbound port under `shoal up`) to URLs
naming a service, e.g. `http://ratings/ratings`; the sidecar routes by Host.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import pydantic
from aiohttp import web
from aiohttp.typedefs import Handler

from shoal.samples._serve import serve_until_signal
from shoal.samples.knobs import (
    Knobs,
    KnobsUpdate,
    arg_type,
    parse_flag,
    parse_latency,
    parse_rate,
    split_upstreams,
)

log = logging.getLogger("shoal.samples.service")

# Headers an app must copy from its inbound request to its outbound calls for tracing and
# header-based routing to work (Istio's "header propagation" list, as Bookinfo does it).
# Envoy's x-envoy-* headers (x-envoy-expected-rq-timeout-ms, x-envoy-attempt-count, ...) are
# deliberately absent: they describe one hop. The caller's deadline travels differently: see
# `Deadline` (the time left is re-stated on each upstream call, not copied).
PROPAGATED_HEADERS = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "end-user",
    "authorization",
    "cookie",
)


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who answers: put in every response body and in the x-service/x-version/x-replica headers."""

    service: str
    version: str
    replica: str


# Set by the caller's sidecar on every request with a route timeout: the milliseconds left.
EXPECTED_TIMEOUT = "x-envoy-expected-rq-timeout-ms"
# Read by our own sidecar on an outbound call: the timeout of that call, in milliseconds.
UPSTREAM_TIMEOUT = "x-envoy-upstream-rq-timeout-ms"


@dataclasses.dataclass(frozen=True)
class Deadline:
    """When the caller stops waiting for this request (monotonic seconds), if it said.

    Deadline propagation: a request's remaining time travels with it. The caller's sidecar
    states it in x-envoy-expected-rq-timeout-ms; upstream calls made for the request get the
    time still left (minus nothing for transit: sidecars enforce it again on their side) as
    their own timeout, both in the HTTP client and in x-envoy-upstream-rq-timeout-ms so the
    outbound sidecar enforces it and states it to the next hop. No work outlives the caller.
    """

    at: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: float) -> Deadline:
        raw = headers.get(EXPECTED_TIMEOUT, "")
        try:
            ms = int(raw)
        except ValueError:
            return cls(None)
        return cls(now + ms / 1000.0) if ms > 0 else cls(None)

    def remaining(self, now: float) -> float | None:
        return None if self.at is None else max(0.0, self.at - now)

    def limit(self, default: float, now: float) -> tuple[float, dict[str, str]]:
        """The time limit for an upstream call and the headers that carry it."""
        left = self.remaining(now)
        if left is None or left >= default:
            return default, {}
        # at least 1 ms: a zero limit would mean "no limit" to the HTTP client and to Envoy
        return max(left, 0.001), {UPSTREAM_TIMEOUT: str(max(1, int(left * 1000)))}


def propagated_headers(incoming: Mapping[str, str]) -> dict[str, str]:
    """The headers of `incoming` to forward upstream; adds an x-request-id if there is none."""
    headers = {name: incoming[name] for name in PROPAGATED_HEADERS if name in incoming}
    # Without a sidecar in front nobody assigns a request id; make one so the whole call tree
    # of this request still shares it.
    headers.setdefault("x-request-id", str(uuid.uuid4()))
    return headers


async def call_upstream(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], time_limit: float
) -> tuple[bool, Any]:
    """GET `url`; return (ok, the upstream's JSON body or a folded-in failure)."""
    try:
        async with session.get(
            url, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=time_limit)
        ) as resp:
            text = await resp.text()
            body = _json_or_text(text)
            if resp.status >= 400:
                error = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
                return False, {"url": url, "status": resp.status, "error": error, "body": body}
            if isinstance(body, dict):
                return True, body
            return True, {"url": url, "status": resp.status, "body": body}
    except (aiohttp.ClientError, TimeoutError) as exc:
        detail = str(exc) or f"no answer within {time_limit:g}s"
        return False, {"url": url, "error": f"{type(exc).__name__}: {detail}"}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # Not one of ours (a plain web server, Envoy's own "no healthy upstream"): keep the text.
        return text[:500]


class SampleService:
    """The aiohttp application and its run-time state (the current knobs)."""

    def __init__(
        self, identity: Identity, knobs: Knobs, *, rng: random.Random | None = None
    ) -> None:
        self.identity = identity
        self.knobs = knobs
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log_request])
        app.cleanup_ctx.append(self._client_session)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/admin/knobs", self._get_knobs)
        app.router.add_post("/admin/knobs", self._set_knobs)
        app.router.add_post("/admin/blowup", self._blowup)
        # Everything else, any method, is "a request to the service".
        app.router.add_route("*", "/{tail:.*}", self._serve)
        return app

    async def _client_session(self, app: web.Application) -> AsyncIterator[None]:
        # trust_env=True is what makes aiohttp send through HTTP_PROXY, i.e. the sidecar.
        async with aiohttp.ClientSession(trust_env=True) as session:
            self._session = session
            yield
        self._session = None

    @web.middleware
    async def _log_request(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        response = await handler(request)
        if log.isEnabledFor(logging.DEBUG):
            elapsed_ms = (time.monotonic() - started) * 1000
            log.debug(
                "%s %s -> %d in %.1fms (via %s)",
                request.method,
                request.path_qs,
                response.status,
                elapsed_ms,
                request.headers.get("via", "-"),
            )
        return response

    async def _serve(self, request: web.Request) -> web.Response:
        knobs = self.knobs  # one consistent set for the whole request
        deadline = Deadline.from_headers(request.headers, time.monotonic())
        if knobs.latency > 0:
            await asyncio.sleep(knobs.latency)
        forwarded = propagated_headers(request.headers)
        # random() is in [0, 1): rate 1.0 always fails, 0.0 never does.
        if self._rng.random() < knobs.error_rate:
            fault = f"injected fault (error_rate={knobs.error_rate:g})"
            return self._respond(request, knobs.error_code, forwarded, [], error=fault)
        assert self._session is not None, "client session is set up with the app"
        limit, deadline_headers = deadline.limit(knobs.upstream_timeout, time.monotonic())
        results = await asyncio.gather(
            *(
                call_upstream(self._session, url, {**forwarded, **deadline_headers}, limit)
                for url in knobs.upstreams
            )
        )
        failed = [body for ok, body in results if not ok]
        status = 502 if failed and knobs.require_upstreams else 200
        error = f"{len(failed)} upstream call(s) failed" if status == 502 else None
        return self._respond(request, status, forwarded, [body for _, body in results], error)

    def _respond(
        self,
        request: web.Request,
        status: int,
        forwarded: Mapping[str, str],
        upstreams: list[Any],
        error: str | None = None,
    ) -> web.Response:
        body: dict[str, Any] = {
            "service": self.identity.service,
            "version": self.identity.version,
            "replica": self.identity.replica,
            "path": request.path_qs,
            "method": request.method,
            "via": request.headers.get("via"),
            "upstreams": upstreams,
            # What this hop received and passed on, to check propagation by eye.
            "headers": dict(forwarded),
        }
        if error is not None:
            body["error"] = error
        return web.json_response(body, status=status, headers=self._identity_headers())

    def _identity_headers(self) -> dict[str, str]:
        return {
            "x-service": self.identity.service,
            "x-version": self.identity.version,
            "x-replica": self.identity.replica,
        }

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, headers=self._identity_headers())

    async def _get_knobs(self, request: web.Request) -> web.Response:
        return web.json_response(self.knobs.to_json(), headers=self._identity_headers())

    async def _set_knobs(self, request: web.Request) -> web.Response:
        try:
            update = KnobsUpdate.model_validate_json(await request.read())
        except pydantic.ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            return web.json_response({"errors": errors}, status=400)
        self.knobs = update.apply(self.knobs)
        log.info("knobs changed: %s", self.knobs.to_json())
        return web.json_response(self.knobs.to_json(), headers=self._identity_headers())

    async def _blowup(self, request: web.Request) -> web.Response:
        self.knobs = dataclasses.replace(self.knobs, error_rate=1.0)
        log.info("blown up: every request now answers %d", self.knobs.error_code)
        return web.json_response(self.knobs.to_json(), headers=self._identity_headers())


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    """Flags, each defaulting to its environment variable (so flags win over env)."""
    p = argparse.ArgumentParser(
        prog="python -m shoal.samples.service", description=__doc__.splitlines()[0]
    )
    p.add_argument("--name", default=env.get("SHOAL_SERVICE", "sample"), help="service name")
    p.add_argument("--version", default=env.get("SHOAL_VERSION", "v1"))
    p.add_argument("--replica", default=env.get("SHOAL_REPLICA"), help="replica id")
    p.add_argument("--host", default=env.get("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env.get("PORT", "8080")))
    p.add_argument(
        "--error-rate",
        type=arg_type(parse_rate, "expected a fraction between 0 and 1"),
        default=env.get("SHOAL_ERROR_RATE", "0"),
        help="fraction of requests answered with --error-code",
    )
    p.add_argument("--error-code", type=int, default=int(env.get("SHOAL_ERROR_CODE", "503")))
    p.add_argument(
        "--latency",
        type=arg_type(parse_latency, "expected a duration like 200ms or seconds"),
        default=env.get("SHOAL_LATENCY", "0"),
        help='added to every request: "200ms", "1s" or seconds',
    )
    p.add_argument(
        "--upstreams",
        type=split_upstreams,
        default=env.get("SHOAL_UPSTREAMS", ""),
        help="comma-separated URLs to call on every request, e.g. http://ratings/ratings",
    )
    p.add_argument(
        "--require-upstreams",
        action="store_true",
        default=parse_flag(env.get("SHOAL_REQUIRE_UPSTREAMS", "")),
        help="answer 502 when an upstream call fails (default: 200 with partial result)",
    )
    p.add_argument(
        "--upstream-timeout",
        type=arg_type(parse_latency, "expected a duration like 2s"),
        default=env.get("SHOAL_UPSTREAM_TIMEOUT", "2s"),
    )
    p.add_argument("--log-level", default=env.get("SHOAL_LOG_LEVEL", "WARNING"))
    args = p.parse_args(argv)
    if not 100 <= args.error_code <= 599:
        p.error(f"--error-code must be an HTTP status (100-599), got {args.error_code}")
    return args


def service_from_args(args: argparse.Namespace) -> SampleService:
    replica = args.replica or f"{args.name}-{args.version}-{os.getpid()}"
    knobs = Knobs(
        error_rate=args.error_rate,
        error_code=args.error_code,
        latency=args.latency,
        upstreams=args.upstreams,
        require_upstreams=args.require_upstreams,
        upstream_timeout=args.upstream_timeout,
    )
    return SampleService(Identity(args.name, args.version, replica), knobs)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, os.environ)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Only our own loggers get chatty at DEBUG; asyncio's and aiohttp's stay at WARNING.
    logging.getLogger("shoal").setLevel(args.log_level.upper())
    service = service_from_args(args)
    asyncio.run(serve_until_signal(service.app(), args.host, args.port))


if __name__ == "__main__":
    main()
