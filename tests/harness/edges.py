"""Helpers for the edge-pattern e2e tests: gateway (``router~``) and app-backed sidecar Envoys,
TCP backends that say who they are, a self-signed certificate, and one-shot HTTP(S) requests.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from harness.envoy import sidecar_bootstrap, sidecar_node
from harness.ports import free_port

GATEWAY_LABELS = {"istio": "ingressgateway"}


def router_bootstrap(
    xds_port: int, name: str = "ingress", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A gateway-mode Envoy: node type ``router``, listeners from Gateways selecting ``labels``."""
    node_id = f"router~127.0.0.1~{name}.default~default.svc.cluster.local"
    metadata: dict[str, Any] = {
        "NAMESPACE": "default",
        "LABELS": labels or GATEWAY_LABELS,
        "INSTANCE_IPS": "127.0.0.1",
        "WORKLOAD_NAME": name,
        "INTERCEPTION_MODE": "NONE",
    }
    return sidecar_bootstrap(node_id, metadata, xds_port, free_port())


def app_sidecar_bootstrap(
    xds_port: int, name: str, app_port: int, labels: dict[str, str] | None = None
) -> tuple[dict[str, Any], int, int]:
    """A NONE-mode sidecar whose inbound listener forwards to ``app_port``.

    Returns (bootstrap, outbound port, inbound port).
    """
    outbound, inbound = free_port(), free_port()
    node_id, metadata = sidecar_node(
        name, outbound_port=outbound, inbound_port=inbound, labels=labels
    )
    metadata["APP_PORT"] = str(app_port)
    return sidecar_bootstrap(node_id, metadata, xds_port, free_port()), outbound, inbound


def get(
    port: int,
    host: str,
    path: str = "/",
    *,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
    timeout: float = 3.0,
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a new connection: (status, lower-cased headers, body)."""
    conn: http.client.HTTPConnection
    if tls is not None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        wrapped = tls.wrap_socket(sock, server_hostname=server_name or host)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.sock = wrapped
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def self_signed(directory: Path, host: str) -> tuple[str, str]:
    """A self-signed certificate for ``host`` made with the openssl CLI: (cert PEM, key PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert.read_text(), key.read_text()


class TcpNameServer:
    """A TCP server that writes its name and a newline to every connection, then closes it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"tcp-{name}")

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> TcpNameServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.sendall(f"{self.name}\n".encode())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


def tcp_names(port: int, n: int, timeout: float = 2.0) -> Counter[str]:
    """Open ``n`` connections to ``port`` and count the names read (``error`` on failure)."""
    out: Counter[str] = Counter()
    for _ in range(n):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                data = b""
                while chunk := sock.recv(64):
                    data += chunk
            out[data.decode().strip() or "empty"] += 1
        except OSError:
            out["error"] += 1
    return out
