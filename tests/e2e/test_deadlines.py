"""Deadline propagation: no hop keeps working for a caller that has given up.

frontend (sample service) calls slowsvc (3 s) through its sidecar; both apps sit behind their
own sidecar's inbound listener. With `timeout: 1s` on the route to frontend, the caller's
sidecar states the time left (x-envoy-expected-rq-timeout-ms), the frontend's inbound sidecar
honours it, the frontend app passes what is left on to its upstream call, and slowsvc's
sidecar gives up at ~1 s too. Baseline: a caller that times out by itself (no route timeout)
leaves slowsvc's request running until the frontend's own 2 s client timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.controlplane import ControlPlane
from harness.envoy import EnvoyProcess, sidecar_bootstrap, sidecar_node
from harness.mesh import Mesh
from harness.policies import call, host, virtual_service
from harness.ports import free_port
from harness.sample import SampleProcess
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _se(name: str, port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{host(name)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
"""


class Pod:
    """An app port and its sidecar's ports (the sidecar starts later, once the cp runs)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.app, self.inbound, self.outbound = free_port(), free_port(), free_port()
        self.envoy: EnvoyProcess | None = None

    def start_sidecar(self, mesh: Mesh, cp: ControlPlane) -> EnvoyProcess:
        node_id, meta = sidecar_node(
            self.name, outbound_port=self.outbound, inbound_port=self.inbound
        )
        meta["APP_PORT"] = str(self.app)
        boot = sidecar_bootstrap(node_id, meta, cp.xds_port, free_port())
        self.envoy = mesh.envoy_factory(boot, name=self.name)
        return self.envoy


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[list[SampleProcess]]:
    started: list[SampleProcess] = []
    yield started
    for sample in reversed(started):
        sample.stop()


def test_callee_sidecar_gives_up_at_the_callers_deadline(
    mesh: Mesh, pods: list[SampleProcess], tmp_path: Path
) -> None:
    front, slow = Pod("frontend"), Pod("slowsvc")
    vs = virtual_service(
        "frontend", f"- timeout: 1s\n  route:\n  - destination: {{host: {host('frontend')}}}"
    )
    mesh.config.write(
        "mesh.yaml",
        "---\n".join([_se("frontend", front.inbound), _se("slowsvc", slow.inbound), vs]),
    )
    cp = mesh._cp_factory(mesh.config)
    front.start_sidecar(mesh, cp)
    slow_envoy = slow.start_sidecar(mesh, cp)

    def sample(pod: Pod, *args: str, env: dict[str, str] | None = None) -> SampleProcess:
        proc = SampleProcess(pod.name, tmp_path, *args, env=env)
        proc.port = pod.app
        pods.append(proc)
        return proc.start()

    sample(slow, "--latency", "3s")
    proxy = {"HTTP_PROXY": f"http://127.0.0.1:{front.outbound}"}
    sample(front, "--upstreams", f"http://{host('slowsvc')}/", "--require-upstreams", env=proxy)
    active = f"cluster.inbound|{slow.app}||.upstream_rq_active"
    # the callee's sidecar cancelled the request to its app (closed the connection mid-request)
    cancelled = f"cluster.inbound|{slow.app}||.upstream_cx_destroy_local_with_active_rq"
    wait_until(lambda: call(front.inbound, host("frontend"), "/healthz").status == 200, 10)

    # Baseline: the caller gives up after 1 s by itself, the mesh knows no deadline.
    with pytest.raises(TimeoutError):
        call(front.inbound, host("frontend"), timeout=1.0)
    time.sleep(0.5)
    assert slow_envoy.stat(active) == 1, "baseline: slowsvc still works for nobody"
    wait_until(lambda: slow_envoy.stat(active) == 0, 5)

    # With the route timeout the deadline travels: slowsvc's sidecar gives up at ~1 s too.
    before = slow_envoy.stat(cancelled)
    answer = call(front.outbound, host("frontend"))
    assert answer.status == 504 and 0.9 <= answer.seconds <= 1.3, answer
    time.sleep(0.3)
    assert slow_envoy.stat(active) == 0, "slowsvc's sidecar still waits for its app"
    assert slow_envoy.stat(cancelled) == before + 1
