"""A server sidecar strips its callers' `x-shoal-peer-*` headers whatever its metrics.

The caller's secure sidecar states its workload in `x-shoal-peer-*` headers for the server's
`reporter="destination"` labels; the server sidecar reads and removes them. A Telemetry that
turns every metric off on the server (so nothing there reads them) must not let them through
to the app: the caller's sidecar still sends them, because other servers count.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.envoy import EnvoyProcess
from harness.secmesh import SecureMesh, backend_headers, call, service_entry
from harness.wait import wait_until
from shoal.generate.names import INBOUND_LISTENER, OUTBOUND_LISTENER
from shoal.generate.telemetry import STATS_LOGGER

pytestmark = pytest.mark.envoy

SERVER_METRICS_OFF = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews-quiet, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  metrics:
  - overrides: [{match: {metric: ALL_METRICS, mode: SERVER}, disabled: true}]
"""


def _listener(envoy: EnvoyProcess, name: str) -> dict[str, Any]:
    for config in envoy.config_dump()["configs"]:
        for listener in config.get("dynamic_listeners", []):
            if listener["name"] == name and "active_state" in listener:
                found: dict[str, Any] = listener["active_state"]["listener"]
                return found
    raise AssertionError(f"{envoy.name}: no active {name} listener")


def _peer_headers(port: int, sent: dict[str, str]) -> dict[str, str] | None:
    """The `x-shoal-peer-*` headers the app behind the server sidecar received (None: not
    answered by it)."""
    status, headers, body = call(port, headers=sent)
    if status != 200 or headers.get("x-backend") != "reviews":
        return None
    seen = backend_headers(body)
    return {k: v for k, v in seen.items() if k.startswith("x-shoal-peer-")}


def test_peer_headers_never_reach_the_app_with_server_metrics_off(
    secmesh: SecureMesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port, labels={"app": "reviews"})
    client = secmesh.sidecar("productpage", labels={"app": "productpage"})
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 2, 15)
    forged = {"x-shoal-peer-workload": "forged", "x-shoal-peer-app": "forged"}

    # metrics on: the server reads the caller's claims and removes them
    wait_until(lambda: _peer_headers(client.outbound, forged) is not None, 10, interval=0.2,
               what="a call through both sidecars", describe=client.envoy.describe)  # fmt: skip
    assert _peer_headers(client.outbound, forged) == {}
    # the caller's sidecar does send them (so the strip below is what hides them)
    assert "x-shoal-peer-workload" in json.dumps(_listener(client.envoy, OUTBOUND_LISTENER))

    config_dir.write("telemetry.yaml", SERVER_METRICS_OFF)

    def server_counts_nothing() -> bool:
        return STATS_LOGGER not in json.dumps(_listener(server.envoy, INBOUND_LISTENER))

    wait_until(server_counts_nothing, 15, interval=0.2, what="the server's stats logger gone",
               describe=server.envoy.describe)  # fmt: skip
    for sender in (client.outbound, server.inbound):  # through the caller's sidecar, plaintext
        assert _peer_headers(sender, forged) == {}
