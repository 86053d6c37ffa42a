"""Weighted TCP routing through a gateway: a VirtualService `tcp` route split 50/50."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.configdir import ConfigDir
from harness.edges import TcpNameServer, router_bootstrap, tcp_names
from harness.envoy import EnvoyProcess
from harness.mesh import Mesh
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

N = 200


@pytest.fixture
def echoes() -> Iterator[dict[str, TcpNameServer]]:
    servers = {v: TcpNameServer(v).start() for v in ("v1", "v2")}
    yield servers
    for server in servers.values():
        server.stop()


def _config(port: int, echoes: dict[str, TcpNameServer], weights: dict[str, int]) -> str:
    endpoints = "".join(
        f"\n  - {{address: 127.0.0.1, ports: {{tcp: {s.port}}}, labels: {{version: {v}}}}}"
        for v, s in sorted(echoes.items())
    )
    route = "".join(
        f"\n    - destination: {{host: echo, subset: {v}, port: {{number: 9000}}}}\n"
        f"      weight: {w}"
        for v, w in weights.items()
    )
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints:{endpoints}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: tcp, protocol: TCP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [tcp-ingress]
  tcp:
  - match: [{{port: {port}}}]
    route:{route}
"""


def test_tcp_route_splits_connections_by_weight(
    mesh: Mesh,
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
    echoes: dict[str, TcpNameServer],
) -> None:
    port = free_port()
    config_dir.write("echo.yaml", _config(port, echoes, {"v1": 100, "v2": 0}))
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress")
    router.wait_for(lambda e: f"127.0.0.1_{port}" in e.listeners(), what="tcp listener")

    # baseline: 100/0 sends every connection to v1
    assert tcp_names(port, 40) == {"v1": 40}

    config_dir.write("echo.yaml", _config(port, echoes, {"v1": 50, "v2": 50}))
    wait_until(
        lambda: tcp_names(port, 20)["v2"] > 0,
        10,
        interval=0.2,
        what="the 50/50 split to reach v2",
        describe=router.describe,
    )
    counts = tcp_names(port, N)
    assert counts["v1"] + counts["v2"] == N, counts
    # binomial(200, 0.5): one standard deviation is ~3.5 points; +-15 fails only if wrong
    assert abs(100 * counts["v1"] / N - 50) <= 15, counts
