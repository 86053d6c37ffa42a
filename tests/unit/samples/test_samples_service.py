"""The sample service over real HTTP on loopback: knobs, upstream folding, header propagation."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from harness.ports import free_port
from shoal.samples.knobs import Knobs, KnobsUpdate, parse_latency
from shoal.samples.service import parse_args, propagated_headers

from .conftest import StartApp, StartService


async def fetch(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, **kwargs) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json()


async def test_answers_with_identity_and_echoes_via(start_service: StartService) -> None:
    _, url = await start_service("reviews", "v2")
    status, headers, body = await fetch(f"{url}/reviews?x=1", headers={"via": "1.1 sidecar"})
    assert status == 200
    assert (headers["x-service"], headers["x-version"], headers["x-replica"]) == (
        "reviews",
        "v2",
        "reviews-v2-0",
    )
    assert body["service"] == "reviews"
    assert body["version"] == "v2"
    assert body["path"] == "/reviews?x=1"
    assert body["method"] == "GET"
    assert body["via"] == "1.1 sidecar"
    assert body["upstreams"] == []


async def test_error_rate_one_answers_error_code(start_service: StartService) -> None:
    _, url = await start_service(error_rate=1.0, error_code=500)
    for _ in range(3):
        status, headers, body = await fetch(url + "/")
        assert status == 500
        assert body["service"] == "svc"
        assert "injected" in body["error"]
        assert headers["x-version"] == "v1"


async def test_latency_is_added(start_service: StartService) -> None:
    _, url = await start_service(latency=0.15)
    started = time.monotonic()
    status, _, _ = await fetch(url + "/")
    assert status == 200
    assert time.monotonic() - started >= 0.15


async def test_post_knobs_changes_behaviour(start_service: StartService) -> None:
    service, url = await start_service()
    assert (await fetch(url + "/"))[0] == 200
    status, _, knobs = await fetch(
        url + "/admin/knobs", "POST", json={"error_rate": 1.0, "error_code": 418, "latency": "1ms"}
    )
    assert status == 200
    assert knobs["error_rate"] == 1.0
    assert knobs["latency"] == "0.001s"
    assert (await fetch(url + "/"))[0] == 418
    assert (await fetch(url + "/healthz"))[0] == 200  # admin paths never fault
    status, _, knobs = await fetch(url + "/admin/knobs")
    assert knobs["error_code"] == 418
    await fetch(url + "/admin/knobs", "POST", json={"error_rate": 0})
    assert (await fetch(url + "/"))[0] == 200
    await fetch(url + "/admin/blowup", "POST")
    assert service.knobs.error_rate == 1.0
    assert (await fetch(url + "/"))[0] == 418


async def test_bad_knobs_are_refused_and_change_nothing(start_service: StartService) -> None:
    service, url = await start_service()
    status, _, body = await fetch(
        url + "/admin/knobs", "POST", json={"error_rate": 2, "latency": "soon", "bogus": 1}
    )
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"error_rate", "latency", "bogus"}
    assert service.knobs == Knobs()


async def test_upstreams_are_called_and_folded_in(start_service: StartService) -> None:
    _, ratings = await start_service("ratings")
    _, reviews = await start_service("reviews", "v2", upstreams=(f"{ratings}/ratings",))
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    _, failing = await start_service("details", error_rate=1.0)
    _, front = await start_service(
        "frontend", upstreams=(f"{reviews}/reviews", dead, f"{failing}/details")
    )
    status, _, body = await fetch(front + "/")
    assert status == 200  # partial result without --require-upstreams
    first, second, third = body["upstreams"]
    assert (first["service"], first["version"]) == ("reviews", "v2")
    assert first["upstreams"][0]["service"] == "ratings"
    assert first["upstreams"][0]["path"] == "/ratings"
    assert second["url"] == dead
    assert "error" in second
    assert third["url"] == f"{failing}/details"
    assert third["status"] == 503
    assert third["body"]["service"] == "details"


async def test_require_upstreams_turns_failure_into_502(start_service: StartService) -> None:
    _, failing = await start_service("ratings", error_rate=1.0)
    _, front = await start_service(
        "frontend", upstreams=(f"{failing}/ratings",), require_upstreams=True
    )
    status, _, body = await fetch(front + "/")
    assert status == 502
    assert body["upstreams"][0]["status"] == 503


async def test_slow_upstream_times_out(start_service: StartService) -> None:
    _, slow = await start_service("ratings", latency=0.4)
    _, front = await start_service("frontend", upstreams=(slow,), upstream_timeout=0.05)
    started = time.monotonic()
    status, _, body = await fetch(front + "/")
    assert status == 200
    assert body["upstreams"][0]["error"].startswith("TimeoutError")
    assert time.monotonic() - started < 0.3


async def test_propagates_tracing_and_user_headers(
    start_app: StartApp, start_service: StartService
) -> None:
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"service": "recorder", "version": "v0"})

    recorder = web.Application()
    recorder.router.add_get("/", record)
    upstream = await start_app(recorder)
    _, front = await start_service("frontend", upstreams=(upstream + "/",))
    sent = {
        "x-request-id": "req-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
        "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        "end-user": "jason",
        "x-envoy-expected-rq-timeout-ms": "1500",
        "x-unrelated": "nope",
    }
    status, _, body = await fetch(front + "/", headers=sent)
    assert status == 200
    got = {k.lower(): v for k, v in seen[0].items()}
    for name in ("x-request-id", "traceparent", "x-b3-traceid", "b3", "end-user"):
        assert got[name] == sent[name]
    assert "x-envoy-expected-rq-timeout-ms" not in got
    assert "x-unrelated" not in got
    assert body["headers"]["end-user"] == "jason"


def test_request_id_is_made_when_missing() -> None:
    a = propagated_headers({})["x-request-id"]
    assert a
    assert a != propagated_headers({})["x-request-id"]
    assert propagated_headers({"x-request-id": "r"}) == {"x-request-id": "r"}


def test_flags_win_over_env() -> None:
    env = {"SHOAL_SERVICE": "ratings", "SHOAL_VERSION": "v3", "PORT": "9000"}
    env |= {"SHOAL_LATENCY": "200ms", "SHOAL_UPSTREAMS": "http://a/x, http://b/y"}
    args = parse_args([], env)
    assert (args.name, args.version, args.port, args.latency) == ("ratings", "v3", 9000, 0.2)
    assert args.upstreams == ("http://a/x", "http://b/y")
    args = parse_args(["--name", "reviews", "--latency", "1.5", "--error-rate", "0.25"], env)
    assert (args.name, args.latency, args.error_rate) == ("reviews", 1.5, 0.25)
    with pytest.raises(SystemExit):
        parse_args(["--error-rate", "2"], {})


def test_latency_forms() -> None:
    assert parse_latency("200ms") == pytest.approx(0.2)
    assert parse_latency("1s") == 1.0
    assert parse_latency("0.5") == 0.5
    assert parse_latency(2) == 2.0
    with pytest.raises(ValueError):
        parse_latency("-1")
    assert KnobsUpdate(latency="1m").apply(Knobs()).latency == 60.0


async def test_program_serves_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.lower() != "http_proxy"}
    env |= {"PORT": str(port), "SHOAL_SERVICE": "ratings", "SHOAL_REPLICA": "ratings-v1-7"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoal.samples.service", env=env
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                _, headers, _ = await fetch(f"http://127.0.0.1:{port}/healthz")
                break
            except aiohttp.ClientConnectionError:
                assert time.monotonic() < deadline, "service did not start"
                await asyncio.sleep(0.05)
        assert headers["x-replica"] == "ratings-v1-7"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_upstream_calls_go_through_http_proxy(
    start_app: StartApp, start_service: StartService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in sidecar: a plain HTTP proxy answering for "ratings" and adding a via header,
    # as the real one does.
    seen: list[tuple[str, str]] = []

    async def sidecar(request: web.Request) -> web.Response:
        seen.append((request.host, request.path))
        via = "1.1 sidecar"
        return web.json_response({"service": "ratings", "version": "v1", "via": via})

    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", sidecar)
    proxy_url = await start_app(proxy)
    _, front = await start_service("frontend", upstreams=("http://ratings/ratings",))
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    async with aiohttp.ClientSession() as session, session.get(front + "/") as resp:
        body = await resp.json()
    assert seen == [("ratings", "/ratings")]
    assert body["upstreams"][0]["via"] == "1.1 sidecar"
