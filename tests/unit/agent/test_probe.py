"""The agent's readiness probe: the group's JSON read, one attempt of each kind against
real sockets and a real command, and Kubernetes' thresholds."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from shoal.agent.probe import Probe, ProbeState, check


def test_the_groups_probe_json_is_read_with_kubernetes_defaults() -> None:
    probe = Probe.from_json(
        {
            "periodSeconds": 2,
            "httpGet": {
                "port": 8080,
                "path": "/ready",
                "httpHeaders": [{"name": "x", "value": "1"}],
            },
        }
    )
    assert probe.kind == "httpGet" and probe.port == 8080 and probe.path == "/ready"
    assert probe.headers == (("x", "1"),) and probe.host == "127.0.0.1"
    assert (probe.period_s, probe.timeout_s, probe.failure_threshold) == (2.0, 1.0, 3)
    assert Probe.from_json({"exec": {"command": ["true"]}}).command == ("true",)


async def _serve(status: int) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        assert request.headers.get("x-probe") == "shoal"
        return web.Response(status=status)

    app = web.Application()
    app.router.add_get("/ready", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


def test_http_tcp_and_exec_attempts() -> None:
    async def scenario() -> None:
        ok, ok_port = await _serve(200)
        bad, bad_port = await _serve(503)
        try:

            def http(port: int) -> Probe:
                return Probe(
                    kind="httpGet", port=port, path="/ready", headers=(("x-probe", "shoal"),)
                )

            assert (await check(http(ok_port)))[0] is True
            passed, message = await check(http(bad_port))
            assert passed is False and "503" in message
            assert (await check(Probe(kind="tcpSocket", port=ok_port)))[0] is True
        finally:
            await ok.cleanup()
            await bad.cleanup()
        passed, message = await check(Probe(kind="tcpSocket", port=ok_port))
        assert passed is False and "failed" in message
        assert (await check(Probe(kind="exec", command=(sys.executable, "-c", "pass"))))[0]
        slow = Probe(
            kind="exec", command=(sys.executable, "-c", "import time; time.sleep(5)"), timeout_s=0.3
        )
        passed, message = await check(slow)
        assert passed is False and "timed out" in message

    asyncio.run(scenario())


def test_thresholds_decide_ready_and_not_ready() -> None:
    state = ProbeState(Probe(kind="tcpSocket", port=1, success_threshold=2, failure_threshold=2))
    assert state.record(True) is None  # not known until a threshold is reached
    assert state.record(True) is True
    assert state.record(False) is True  # one failure is not enough
    assert state.record(False) is False
    assert state.record(True) is False
    assert state.record(True) is True
