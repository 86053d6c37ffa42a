"""The caller's peer-identity headers (`x-shoal-peer-*`) never leave the mesh.

A real sidecar Envoy states its workload in `x-shoal-peer-*` request headers for the server
sidecar's metrics. A mesh-internal host receives them (here a plain backend, so the test sees
them); external echo servers on loopback, reached through ALLOW_ANY's dynamic forward proxy,
through a `MESH_EXTERNAL` ServiceEntry, and as one side of a weighted VirtualService split,
must see none of them, not even the ones the app itself sent.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.mesh import HOST, Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

EXTERNAL = "echo.example.com"


def _echo(port: int, host: str, headers: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The echo body of one request through the sidecar, or None if it was not answered 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", f"http://{host}/", headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    finally:
        conn.close()


def _peer(echo: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in echo["headers"].items() if k.startswith("x-shoal-peer-")}


def _external_se(port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{EXTERNAL}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
"""


SPLIT = f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  http:
  - route:
    - destination: {{host: {HOST}, subset: v1, port: {{number: 80}}}}
      weight: 50
    - destination: {{host: {EXTERNAL}, port: {{number: 80}}}}
      weight: 50
"""


def test_peer_headers_reach_mesh_hosts_but_never_external_ones(
    mesh: Mesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    unlisted = backend_factory("unlisted")  # no ServiceEntry: ALLOW_ANY passthrough
    external = backend_factory("external")  # a MESH_EXTERNAL ServiceEntry
    mesh.start()
    config_dir.write("echo-se.yaml", _external_se(external.port))
    sidecar = mesh.sidecar()
    mesh.synced()
    forged = {"x-shoal-peer-app": "forged", "x-shoal-peer-version": "forged"}

    # inside the mesh the sidecar states who calls (overwriting what the app sent)
    inside = wait_until(lambda: _echo(sidecar.outbound_port, HOST, forged), 10, what="reviews")
    assert _peer(inside)["x-shoal-peer-workload"] == "productpage"
    assert _peer(inside)["x-shoal-peer-app"] == "productpage"

    passthrough = _echo(sidecar.outbound_port, f"127.0.0.1:{unlisted.port}", forged)
    assert passthrough is not None and passthrough["name"] == "unlisted"
    assert _peer(passthrough) == {}, passthrough["headers"]

    to_se = wait_until(lambda: _echo(sidecar.outbound_port, EXTERNAL, forged), 10, what="echo SE")
    assert to_se["name"] == "external"
    assert _peer(to_se) == {}, to_se["headers"]

    # a split between a mesh host and an external one: stripped on the external side only
    config_dir.write("reviews-vs.yaml", SPLIT)
    seen: dict[str, dict[str, str]] = {}

    def both_sides() -> bool:
        echo = _echo(sidecar.outbound_port, HOST, forged)
        if echo is not None:
            seen[echo["name"]] = _peer(echo)
        return set(seen) == {"external", "v1"}

    wait_until(both_sides, 15, interval=0.05, what=f"both sides of the split ({seen})")
    assert seen["external"] == {}
    assert seen["v1"]["x-shoal-peer-workload"] == "productpage"
