"""Helpers for the route-policy e2e tests: one service with versioned endpoints, a
VirtualService whose HTTP rule the test writes, and single timed requests through a sidecar.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

NS = "default"


def host(name: str) -> str:
    return f"{name}.{NS}.svc.cluster.local"


def service_entry(name: str, endpoints: dict[str, int], lb: str = "ROUND_ROBIN") -> str:
    """SE (one 127.0.0.1 endpoint per version -> port) and a DR with a subset per version."""
    eps = "".join(
        f"\n  - {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{version: {v}}}}}"
        for v, port in sorted(endpoints.items())
    )
    subsets = "".join(f"\n  - {{name: {v}, labels: {{version: {v}}}}}" for v in sorted(endpoints))
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {NS}}}
spec:
  hosts: [{host(name)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:{eps}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {NS}}}
spec:
  host: {host(name)}
  trafficPolicy: {{loadBalancer: {{simple: {lb}}}}}
  subsets:{subsets}
"""


def virtual_service(name: str, http: str) -> str:
    """A VirtualService for ``name`` whose ``http:`` list is ``http`` (YAML, 2-space indent)."""
    body = "\n".join("  " + line if line else line for line in http.strip("\n").splitlines())
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {NS}}}
spec:
  hosts: [{host(name)}]
  http:
{body}
"""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int,
    host_header: str,
    path: str = "/",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Answer:
    """One request on a fresh connection, timed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.monotonic()
        conn.request(method, path, headers={"Host": host_header, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.monotonic() - started
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, elapsed)
    finally:
        conn.close()


def statuses(port: int, host_header: str, n: int, path: str = "/") -> Counter[int]:
    """``n`` sequential GETs on one keep-alive connection; a Counter of statuses."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out: Counter[int] = Counter()
    try:
        for _ in range(n):
            conn.request("GET", path, headers={"Host": host_header})
            resp = conn.getresponse()
            resp.read()
            out[resp.status] += 1
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    finally:
        conn.close()
    return out
