"""Helpers for the security e2e tests: a `reviews` app behind a secure sidecar, registered
with Istio's `security.istio.io/tlsMode: istio` label and its service account, and secure
client sidecars, each with its own test SDS server (harness/sds.py) and SPIFFE identity.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.envoy import EnvoyProcess
from harness.sds import TestCA, TestSdsServer, secure_sidecar_bootstrap, spiffe

HOST = "reviews.default.svc.cluster.local"


def service_entry(inbound_port: int, *, tls: bool = True) -> str:
    label = ", security.istio.io/tlsMode: istio" if tls else ""
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {inbound_port}}}
    labels: {{app: reviews{label}}}
    serviceAccount: reviews
"""


@dataclass
class SecureSidecar:
    envoy: EnvoyProcess
    outbound: int
    inbound: int


class SecureMesh:
    """A control plane, one CA, and secure sidecars started on demand."""

    def __init__(
        self,
        config: ConfigDir,
        envoy_factory: Callable[..., EnvoyProcess],
        cp: ControlPlane,
    ) -> None:
        self.config = config
        self.envoy_factory = envoy_factory
        self.cp = cp
        self.ca = TestCA()
        self.sds_servers: list[TestSdsServer] = []

    def sidecar(
        self, name: str, *, app_port: int | None = None, labels: dict[str, str] | None = None
    ) -> SecureSidecar:
        sds = TestSdsServer(self.ca, spiffe(name)).start()
        self.sds_servers.append(sds)
        boot, outbound, inbound = secure_sidecar_bootstrap(
            self.cp.xds_port, name, sds.port, app_port=app_port, labels=labels
        )
        return SecureSidecar(self.envoy_factory(boot, name=name), outbound, inbound)

    def stop(self) -> None:
        for sds in self.sds_servers:
            sds.stop()


def call(
    port: int, path: str = "/", *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request through a sidecar's outbound port (or straight to an inbound port)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={"Host": HOST, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def plaintext_refused(port: int) -> bool:
    """True if a plaintext HTTP request to `port` gets no HTTP answer (connection closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
            return sock.recv(1024) == b""
    except OSError:
        return True


def backend_headers(body: bytes) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(body)["headers"]
    return data


def app(backend_factory: Callable[[str], Backend]) -> Backend:
    return backend_factory("reviews")
