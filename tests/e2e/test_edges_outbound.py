"""Outbound traffic policy (Sidecar) and DNS ServiceEntries, through a real sidecar Envoy.

Apps in INTERCEPTION_MODE NONE use their sidecar as HTTP proxy. With Istio's default
ALLOW_ANY a host outside the registry is reached through Envoy's dynamic forward proxy; a
Sidecar with REGISTRY_ONLY turns that into 502 while registry hosts keep working.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.load import fire
from harness.mesh import HOST, Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

REGISTRY_ONLY = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


def _until(port: int, host: str, expected: str, timeout: float = 10.0) -> None:
    last: list[object] = [None]

    def probe() -> bool:
        counts = fire(port, host, 5)
        last[0] = counts
        return counts[expected] == 5

    wait_until(probe, timeout, interval=0.1, what=f"{host} to answer {expected} ({last})")


def test_registry_only_blocks_unknown_hosts_allow_any_reaches_them(
    mesh: Mesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    outside = backend_factory("outside")  # a server no ServiceEntry mentions
    unknown = f"127.0.0.1:{outside.port}"
    mesh.start()
    sidecar = mesh.sidecar()
    mesh.synced()

    # baseline, ALLOW_ANY (Istio's default): the unknown host is reached as asked
    counts = fire(sidecar.outbound_port, unknown, 5)
    assert counts == {"status:200": 5, "outside": 5}, counts

    config_dir.write("sidecar.yaml", REGISTRY_ONLY)
    _until(sidecar.outbound_port, unknown, "status:502")
    before = outside.requests
    assert fire(sidecar.outbound_port, unknown, 5) == {"status:502": 5}
    assert outside.requests == before  # blocked in the sidecar, never sent
    # registry services are unaffected
    assert fire(sidecar.outbound_port, HOST, 5)["status:200"] == 5

    # a workloadSelector'd Sidecar for this workload wins over the namespace-wide one
    config_dir.write(
        "sidecar-allow.yaml",
        """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  outboundTrafficPolicy: {mode: ALLOW_ANY}
""",
    )
    _until(sidecar.outbound_port, unknown, "outside")


def test_dns_service_entry_resolves_localhost(
    mesh: Mesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    echo = backend_factory("echo")
    config_dir.write("sidecar.yaml", REGISTRY_ONLY)
    mesh.start()
    sidecar = mesh.sidecar()
    mesh.synced()
    host = "echo.example.com"

    # baseline: not in the registry, so REGISTRY_ONLY refuses it
    assert fire(sidecar.outbound_port, host, 3) == {"status:502": 3}

    config_dir.write(
        "echo-se.yaml",
        f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: localhost, ports: {{http: {echo.port}}}}}]
""",
    )
    _until(sidecar.outbound_port, host, "echo")
    dump = sidecar.envoy.config_dump()
    text = str(dump)
    assert "STRICT_DNS" in text and f"outbound|80||{host}" in text
