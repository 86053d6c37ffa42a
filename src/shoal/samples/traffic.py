"""A steady-rate traffic generator for the demo mesh.

Run as `python -m shoal.samples.traffic --url http://frontend/ --rps 5`. Under `shoal up` it is
a workload like any other, so its requests leave through its own sidecar (HTTP_PROXY) and
routing rules apply to them. Every few seconds it prints one line: requests, success rate,
p50/p99 latency, errors by status, and how often each `service:version` appeared in the
response trees (which is how a 90/10 split shows up). When PORT is set it also serves
`GET /healthz` and `GET /stats` (totals as JSON) there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from shoal.samples._serve import start, stop_on_signals
from shoal.samples.knobs import arg_type, parse_latency
from shoal.samples.stats import (
    Outcome,
    failed_calls_in,
    format_summary,
    summarize,
    versions_in,
)


def parse_header(text: str) -> tuple[str, str]:
    """`name=value` or `name: value` as a (name, value) pair."""
    for sep in ("=", ":"):
        name, found, value = text.partition(sep)
        if found and name.strip():
            return name.strip(), value.strip()
    raise ValueError(f"expected name=value, got {text!r}")


class TrafficGenerator:
    """Sends requests open-loop at a fixed rate and keeps outcomes for the summaries."""

    def __init__(
        self,
        url: str,
        rps: float,
        headers: Mapping[str, str],
        request_timeout: float,
        method: str = "GET",
    ) -> None:
        if rps <= 0:
            raise ValueError(f"rps must be positive, got {rps}")
        self.url = url
        self.rps = rps
        self.headers = dict(headers)
        self.request_timeout = request_timeout
        self.method = method
        self.window: list[Outcome] = []  # since the last printed line
        self.total: list[Outcome] = []

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> None:
        """Send until `stop` is set or `duration` seconds have passed, then let requests finish."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rps
        next_at = loop.time()
        deadline = None if duration is None else next_at + duration
        in_flight: set[asyncio.Task[None]] = set()
        # trust_env=True: requests go through HTTP_PROXY, i.e. this workload's sidecar.
        async with aiohttp.ClientSession(trust_env=True) as session:
            while not stop.is_set():
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if next_at > now:
                    wake = next_at if deadline is None else min(next_at, deadline)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wake - now):
                            await stop.wait()
                    continue
                # Open loop: a slow answer does not delay the next request, so latency
                # injected in the mesh shows up as latency, not as a lower request rate.
                task = asyncio.create_task(self._one(session))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                # After a stall (a suspended laptop) carry on at the rate, without a burst.
                next_at = max(next_at + interval, now - interval)
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.request_timeout)
            for task in in_flight:
                task.cancel()

    async def _one(self, session: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        try:
            async with session.request(
                self.method,
                self.url,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
            ) as resp:
                text = await resp.text()
                status = resp.status
            body = _json_or_none(text)
            outcome = Outcome(
                status,
                time.monotonic() - started,
                tuple(versions_in(body)),
                failed_calls=failed_calls_in(body),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            name = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            outcome = Outcome(None, time.monotonic() - started, error=name)
        self.window.append(outcome)
        self.total.append(outcome)

    async def wait_ready(
        self, within: float, stop: asyncio.Event, out: TextIO = sys.stdout
    ) -> None:
        """Probe the URL until it gives a whole answer (2xx, no upstream call failed inside),
        for at most `within` seconds: a client that starts with the mesh waits for what it
        calls, as a readiness-gated Kubernetes client would. Probes are not counted."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        print(f"waiting for {self.url} to answer (up to {within:g} s)", file=out, flush=True)
        async with aiohttp.ClientSession(trust_env=True) as session:
            while not stop.is_set() and loop.time() - started < within:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.request(
                        self.method,
                        self.url,
                        headers=self.headers,
                        timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                    ) as resp:
                        body = _json_or_none(await resp.text())
                        if resp.status < 300 and not failed_calls_in(body):
                            took = loop.time() - started
                            print(f"{self.url} answered after {took:.1f} s", file=out, flush=True)
                            return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await stop.wait()
        print(f"{self.url} not ready after {within:g} s; sending anyway", file=out, flush=True)

    def take_window(self) -> list[Outcome]:
        window, self.window = self.window, []
        return window

    async def report_every(self, every: float, out: TextIO = sys.stdout) -> None:
        """Print a summary line of the last `every` seconds until cancelled."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(every)
            label = f"{time.monotonic() - started:.0f}s"
            print(format_summary(summarize(self.take_window()), label), file=out, flush=True)

    def stats_app(self) -> web.Application:
        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(summarize(self.total).to_json())

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/stats", stats)
        return app


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m shoal.samples.traffic", description=__doc__.splitlines()[0]
    )
    p.add_argument("--url", required=True, help="e.g. http://frontend/")
    p.add_argument("--rps", type=float, default=5.0, help="requests per second")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: forever)")
    p.add_argument(
        "--header",
        type=arg_type(parse_header, "expected name=value"),
        action="append",
        default=[],
        help="request header name=value (repeatable), e.g. end-user=jason",
    )
    p.add_argument("--method", default="GET")
    p.add_argument("--every", type=float, default=5.0, help="seconds between summary lines")
    p.add_argument(
        "--timeout",
        type=arg_type(parse_latency, "expected a duration like 5s"),
        default="5s",
        help="per-request timeout",
    )
    p.add_argument(
        "--wait-ready",
        type=arg_type(parse_latency, "expected a duration like 30s"),
        default="0s",
        help="first wait (up to this long) until the URL gives a whole answer",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(env["PORT"]) if "PORT" in env else None)
    args = p.parse_args(argv)
    if args.rps <= 0:
        p.error(f"--rps must be positive, got {args.rps}")
    return args


async def run(args: argparse.Namespace) -> None:
    generator = TrafficGenerator(args.url, args.rps, dict(args.header), args.timeout, args.method)
    stop = stop_on_signals()
    runner = None
    if args.port is not None:
        runner, _ = await start(generator.stats_app(), args.host, args.port)
    if args.wait_ready > 0:
        await generator.wait_ready(args.wait_ready, stop)
    reporter = asyncio.create_task(generator.report_every(args.every))
    try:
        await generator.run(stop, args.duration)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        print(format_summary(summarize(generator.total), "total"), flush=True)
        if runner is not None:
            await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv, os.environ)))


if __name__ == "__main__":
    main()
