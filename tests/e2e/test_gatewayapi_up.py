"""`shoal up` serves a Gateway API Gateway: a LocalGateway labelled
`gateway.networking.k8s.io/gateway-name: edge` runs the router agent whose Envoy takes the
listeners of Gateway `edge`, and its HTTPRoute routes by path to two LocalWorkloads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import procs
from harness.configdir import ConfigDir
from harness.edges import get
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

_SHOAL = Path(sys.executable).parent / "shoal"


def _workload(name: str) -> str:
    return f"""apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  labels: {{app: {name}}}
  command: [python, -m, shoal.samples.service, --name, {name}]
---
"""


def _gateway_api(port: int) -> str:
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: shoal}}
spec: {{controllerName: shoal.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  gatewayClassName: shoal
  listeners:
  - {{name: http, port: {port}, protocol: HTTP, hostname: "*.example.com"}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: shop, namespace: default}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /cart}}}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{set: [{{name: x-route, value: cart}}]}}
    backendRefs: [{{name: cart, port: 80}}]
  - backendRefs: [{{name: shop, port: 80}}]
---
apiVersion: shoal.dev/v1alpha1
kind: LocalGateway
metadata: {{name: edge, namespace: default}}
spec:
  labels: {{gateway.networking.k8s.io/gateway-name: edge}}
"""


def test_shoal_up_serves_a_gateway_api_gateway(tmp_path: Path) -> None:
    config = ConfigDir(tmp_path / "mesh")
    port = free_port()
    config.write("workloads.yaml", _workload("shop") + _workload("cart"))
    config.write("gateway.yaml", _gateway_api(port))
    log_path = tmp_path / "up.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen(
        [str(_SHOAL), "up", str(config.path), "--no-status",
         "--xds-port", str(free_port()), "--admin-port", str(free_port())],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    procs.register(proc)
    try:

        def service(path: str, host: str = "shop.example.com") -> str | None:
            try:
                status, headers, _ = get(port, host, path)
            except OSError:
                return None
            return headers.get("x-service") if status == 200 else str(status)

        wait_until(
            lambda: service("/cart/1") == "cart",
            60,
            interval=0.3,
            what="the Gateway API gateway to route through shoal up",
            describe=lambda: log_path.read_text(errors="replace")[-3000:],
        )
        assert service("/") == "shop"
        assert service("/cartoon") == "shop"  # PathPrefix matches whole segments
        assert get(port, "shop.example.com", "/cart")[1]["x-route"] == "cart"
        # a host the route does not name is not served by it
        assert service("/", "other.example.com") == "404"

        # a live edit of the HTTPRoute (the file watcher, no restart): /cart goes to shop now
        config.write(
            "gateway.yaml",
            _gateway_api(port).replace("name: cart, port: 80", "name: shop, port: 80"),
        )
        wait_until(
            lambda: service("/cart/1") == "shop",
            30,
            interval=0.3,
            what="the edited HTTPRoute to be served",
            describe=lambda: log_path.read_text(errors="replace")[-3000:],
        )
    finally:
        procs.terminate(proc, 15)
        log.close()
