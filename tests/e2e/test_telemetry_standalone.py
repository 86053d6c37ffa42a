"""`shoal stat`, `shoal edges` and `shoal top` against a standalone control plane.

Not under `shoal up`: a `shoal control-plane` serving a folder, and two `shoal agent`
sidecars started by hand (as on a VM), each with its metrics port. `productpage`'s app calls
`reviews` (a WorkloadEntry, as a VM is declared) through its sidecar; the CLI finds both
proxies through the control plane alone (`/debug/prometheus_sd` for the metrics ports,
`/debug/syncz` for the admin ports it taps) and reports the traffic it was sent.
"""

from __future__ import annotations

import http.client
import re
import subprocess
from collections.abc import Callable

import pytest

from harness.agentproc import Agent, AgentFactory
from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import _VENV_BIN, ControlPlane, wait_synced
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

HOST = "reviews.default.svc.cluster.local"


def _registry(inbound: int) -> str:
    """reviews as a VM's workload is declared: a WorkloadEntry selected by a ServiceEntry."""
    return f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews, namespace: default}}
spec:
  address: 127.0.0.1
  ports: {{http: {inbound}}}
  labels: {{app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
"""


def _get(port: int, path: str = "/") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": HOST})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _shoal(cp: ControlPlane, *args: str) -> subprocess.Popen[str]:
    argv = [str(_VENV_BIN / "shoal"), *args, "--control-plane", cp.admin_url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(out: str) -> dict[str, list[str]]:
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]
    return {line[0]: line for line in lines}


def _started(proc: subprocess.Popen[str], prefix: str) -> None:
    """Wait for the command's first line on stderr (its first scrape or its taps are in)."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith(prefix), line + proc.stderr.read()


def test_stat_edges_and_top_find_the_proxies_through_a_standalone_control_plane(
    config_dir: ConfigDir,
    control_plane_factory: Callable[..., ControlPlane],
    backend_factory: Callable[[str], Backend],
    agents: AgentFactory,
) -> None:
    app = backend_factory("reviews")
    cp = control_plane_factory(config_dir)

    def agent(name: str, workload: str, *extra: str) -> Agent:
        labels = f"app={workload},version=v1"
        args = ["--workload", workload, "--labels", labels, "--prometheus-port", str(free_port())]
        return agents(cp.xds_port, *args, *extra, name=name)

    reviews = agent("reviews-0", "reviews", "--app-port", str(app.port), "--service-host", HOST)
    config_dir.write("reviews.yaml", _registry(reviews.inbound))
    productpage = agent("productpage-0", "productpage")
    wait_synced(cp, 2, 30)
    wait_until(lambda: _get(productpage.outbound) == 200, 30, interval=0.2,
               what="productpage's sidecar routing to reviews")  # fmt: skip

    stat = _shoal(cp, "stat", "-n", "default", "--window", "10s")
    top = _shoal(cp, "top", "reviews", "-n", "default", "--once", "--window", "10s")
    _started(stat, "measuring ")
    _started(top, "tapping ")
    for i in range(20):
        assert _get(productpage.outbound, f"/item/{i % 2}") == 200

    out, err = stat.communicate(timeout=60)
    assert stat.returncode == 0, err
    rows = _rows(out)
    meshed, success, rps = rows["reviews"][1:4]
    assert (meshed, success) == ("1/1", "100.00%"), out + err
    assert rps == f"{20 / 10:.1f}rps", out
    assert rows["productpage"][1] == "1/1", out  # listed and meshed, served nothing

    out, err = top.communicate(timeout=60)
    assert top.returncode == 0, err
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()[1:] if line.strip()]
    by_path = {row[3]: row for row in lines}
    assert set(by_path) == {"/item/0", "/item/1"}, out
    assert all(row[4] == "10" and row[5] == "100.00%" for row in by_path.values()), out

    edges = _shoal(cp, "edges")
    out, err = edges.communicate(timeout=60)
    assert edges.returncode == 0, err
    assert _rows(out)["productpage"][:4] == ["productpage", "reviews", "default", "default"], out
