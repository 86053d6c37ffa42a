"""`shoal up` runs an ingress gateway: a LocalGateway becomes a `shoal agent --mode router`
whose Envoy serves the Gateway's port in front of a LocalWorkload; `shoal tap` sees what it
forwards."""

from __future__ import annotations

import json
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


def _config(port: int) -> str:
    return f"""apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: shop, namespace: default}}
spec:
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  labels: {{app: shop}}
  command: [python, -m, shoal.samples.service, --name, shop]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [ingress]
  http:
  - route: [{{destination: {{host: shop}}}}]
"""


LOCAL_GATEWAY = """apiVersion: shoal.dev/v1alpha1
kind: LocalGateway
metadata: {name: ingress, namespace: default}
spec:
  labels: {istio: ingressgateway}
"""


def test_local_gateway_serves_the_gateway_port(tmp_path: Path) -> None:
    config = ConfigDir(tmp_path / "mesh")
    port = free_port()
    config.write("shop.yaml", _config(port))
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - closed at the end
    admin = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [str(_SHOAL), "up", str(config.path), "--no-status",
         "--xds-port", str(free_port()), "--admin-port", admin.split(":")[1]],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    procs.register(proc)
    try:

        def answers() -> int:
            return get(port, "shop.example.com", "/")[0]

        # baseline: the workload runs, but no gateway proxy serves the Gateway yet
        wait_until(
            lambda: b"started shop-0" in (tmp_path / "up.log").read_bytes() or None,
            20,
            what="shoal up to start the workload",
        )
        with pytest.raises(OSError):
            answers()

        config.write("gateway.yaml", LOCAL_GATEWAY)
        wait_until(
            lambda: answers() == 200,
            30,
            interval=0.2,
            what="the gateway to answer through shoal up",
            describe=lambda: (tmp_path / "up.log").read_text(errors="replace")[-3000:],
        )

        # `shoal tap` on a gateway shows what it forwards (its outbound side)
        tap = subprocess.Popen(
            [str(_SHOAL), "tap", "ingress", "--max", "1", "-o", "json", "--control-plane", admin],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert tap.stderr is not None
        assert tap.stderr.readline().startswith("tapping 1 proxy of ingress (outbound)")
        assert get(port, "shop.example.com", "/tapped")[0] == 200
        out, err = tap.communicate(timeout=30)
        assert tap.returncode == 0, err
        event = json.loads(out)
        assert (event["direction"], event["path"], event["status"], event["destination"]) == (
            "outbound", "/tapped", 200, "shop.example.com"
        )  # fmt: skip
    finally:
        procs.terminate(proc, 15)
        log.close()
