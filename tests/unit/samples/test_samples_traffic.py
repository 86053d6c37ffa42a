"""The traffic generator against real sample services on loopback."""

from __future__ import annotations

import asyncio
import io

import pytest

from shoal.samples.stats import summarize
from shoal.samples.traffic import TrafficGenerator, parse_args, parse_header

from .conftest import StartService


async def test_counts_versions_across_the_tree(start_service: StartService) -> None:
    _, v1 = await start_service("reviews", "v1")
    _, v2 = await start_service("reviews", "v2")
    _, front = await start_service("frontend", upstreams=(v1, v2))
    gen = TrafficGenerator(front + "/", rps=100, headers={"end-user": "jason"}, request_timeout=2)
    await gen.run(asyncio.Event(), duration=0.2)
    s = summarize(gen.total)
    # ~20 requests at 100/s over 0.2 s; the exact count depends on scheduling.
    assert 15 <= s.requests <= 25
    assert s.ok == s.requests
    assert s.versions == {
        "frontend:v1": s.requests,
        "reviews:v1": s.requests,
        "reviews:v2": s.requests,
    }


async def test_errors_and_degraded_answers_are_counted(start_service: StartService) -> None:
    _, broken = await start_service("ratings", error_rate=1.0)
    _, front = await start_service("frontend", upstreams=(broken,))
    gen = TrafficGenerator(front + "/", rps=50, headers={}, request_timeout=2)
    await gen.run(asyncio.Event(), duration=0.1)
    s = summarize(gen.total)
    assert s.requests > 0
    assert s.degraded == s.requests
    assert s.versions == {"frontend:v1": s.requests}  # the failed ratings is not "seen"

    _, dead = await start_service("frontend", error_rate=1.0)
    gen = TrafficGenerator(dead, rps=50, headers={}, request_timeout=2)
    await gen.run(asyncio.Event(), duration=0.1)
    assert summarize(gen.total).errors == {"503": len(gen.total)}


async def test_stop_event_ends_the_run_and_reports(start_service: StartService) -> None:
    _, url = await start_service()
    gen = TrafficGenerator(url, rps=20, headers={}, request_timeout=2)
    stop = asyncio.Event()
    out = io.StringIO()
    reporter = asyncio.create_task(gen.report_every(0.1, out))
    asyncio.get_running_loop().call_later(0.25, stop.set)
    await asyncio.wait_for(gen.run(stop), 2)
    reporter.cancel()
    lines = out.getvalue().splitlines()
    assert lines
    assert lines[0].startswith("[0s] ")
    assert "svc:v1=" in lines[0]


def test_parse_header_and_args() -> None:
    assert parse_header("end-user=jason") == ("end-user", "jason")
    assert parse_header("end-user: jason") == ("end-user", "jason")
    with pytest.raises(ValueError):
        parse_header("nothing")
    args = parse_args(
        ["--url", "http://frontend/", "--header", "end-user=jason", "--timeout", "500ms"],
        {"PORT": "9000"},
    )
    assert args.header == [("end-user", "jason")]
    assert (args.rps, args.timeout, args.port, args.duration) == (5.0, 0.5, 9000, None)
    assert parse_args(["--url", "http://x/"], {}).port is None
    with pytest.raises(SystemExit):
        parse_args(["--url", "http://x/", "--rps", "0"], {})
