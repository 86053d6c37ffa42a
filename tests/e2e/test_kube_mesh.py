"""Kubernetes end to end: `shoal install` and `kubectl apply` into the fake API server, the
test harness as the node (harness/kubelet.py: pods through the admission webhook, each in its
own network namespace, containers as processes), two control-plane replicas on the
Kubernetes source in secure mode, real Envoys carrying the traffic with mTLS.

One scenario, in order: a namespace with injection on, Deployments and a Service of the
sample services, Istio routing (DestinationRule, VirtualService to v1, PeerAuthentication
STRICT), all with kubectl; once reviews is up, the traffic pod's Deployment (its application
held until its agent is ready); its requests reach reviews v1 only; a VirtualService
applied with kubectl moves them to v2; then the Lease holder is killed under load: the other
replica takes the Lease within its TTL, every proxy is on the survivor, and a VirtualService
applied then moves the traffic back to v1. Not one request fails from start to end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness import podnet
from harness.adminhttp import get_json
from harness.controlplane import ControlPlane
from harness.kubeapi import KubeAPIThread
from harness.kubectl import Kubectl
from harness.kubelet import Node
from harness.ports import free_port
from harness.wait import wait_until
from shoal.cli.main import main

pytestmark = pytest.mark.envoy
if not podnet.available() or shutil.which("kubectl") is None:  # fail clearly, never skip
    pytest.fail("needs root (network namespaces) and kubectl (.ci/run installs it)", pytrace=False)

LEASE_TTL_S = 3.0
NS = "shop"


def _deployment(name: str, app: str, version: str, sa: str, command: list[str]) -> str:
    port = 8080 if app == "traffic" else 9080
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: {NS}}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: {app}, version: {version}}}}}
          template:
            metadata: {{labels: {{app: {app}, version: {version}}}}}
            spec:
              serviceAccountName: {sa}
              containers:
              - name: {app}
                image: shoal/samples
                command: {json.dumps(command)}
                ports: [{{containerPort: {port}}}]
        """
    )


APP = textwrap.dedent(
    f"""\
    apiVersion: v1
    kind: Namespace
    metadata: {{name: {NS}, labels: {{istio-injection: enabled}}}}
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata: {{name: bookinfo-reviews, namespace: {NS}}}
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata: {{name: traffic, namespace: {NS}}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {{name: reviews, namespace: {NS}, labels: {{app: reviews}}}}
    spec:
      selector: {{app: reviews}}
      ports: [{{name: http, port: 9080, targetPort: 9080}}]
    """
)
SERVICE = ["python", "-m", "shoal.samples.service", "--name", "reviews", "--port", "9080"]
TRAFFIC = [
    "python", "-m", "shoal.samples.traffic", "--url", f"http://reviews.{NS}.svc.cluster.local:9080/",
    "--rps", "25", "--port", "8080", "--host", "0.0.0.0", "--every", "1",
]  # fmt: skip
REVIEWS = "---\n".join(
    _deployment(f"reviews-{v}", "reviews", v, "bookinfo-reviews", [*SERVICE, "--version", v])
    for v in ("v1", "v2")
)
CLIENT = _deployment("traffic", "traffic", "v1", "traffic", TRAFFIC)
ROUTING = textwrap.dedent(
    f"""\
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {{name: reviews, namespace: {NS}}}
    spec:
      host: reviews
      subsets:
      - {{name: v1, labels: {{version: v1}}}}
      - {{name: v2, labels: {{version: v2}}}}
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {{name: default, namespace: {NS}}}
    spec:
      mtls: {{mode: STRICT}}
    """
)


def _route_to(subset: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {{name: reviews, namespace: {NS}}}
        spec:
          hosts: [reviews]
          http:
          - route:
            - destination: {{host: reviews, subset: {subset}}}
        """
    )


def _stats(node: Node) -> dict[str, Any]:
    running = node.pods[(NS, "traffic-0")]
    out = subprocess.run(
        ["curl", "-s", "--max-time", "2", f"http://{running.ip}:8080/stats"],
        capture_output=True, text=True, timeout=5, check=True,
    )  # fmt: skip
    stats: dict[str, Any] = json.loads(out.stdout)
    return stats


def _versions(stats: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in (stats.get("versions") or {}).items()}


def _moves_to(node: Node, version: str, within: float = 20.0) -> None:
    """Wait until the last 20 answers all came from reviews `version`."""
    other = "reviews:v1" if version == "v2" else "reviews:v2"

    def settled() -> bool:
        first = _versions(_stats(node))
        time.sleep(0.8)
        then = _versions(_stats(node))
        gained = {k: then.get(k, 0) - first.get(k, 0) for k in then}
        return gained.get(f"reviews:{version}", 0) >= 15 and gained.get(other, 0) == 0

    wait_until(settled, within, interval=0.1, what=f"traffic on reviews {version} only")


def _holder(api: KubeAPIThread) -> str:
    lease = api.get("coordination.k8s.io/v1", "Lease", "shoal-control-plane", "shoal-system")
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def _informed(api: KubeAPIThread, cp: ControlPlane) -> bool:
    """`cp`'s EndpointSlice informer has seen the reviews slice as it is now."""
    held = api.get("discovery.k8s.io/v1", "EndpointSlice", "reviews-node", NS)
    view = get_json(cp.admin_url + "/debug/kubernetes")["informers"]["EndpointSlice"]
    return held is not None and int(view["resource_version"] or 0) >= int(
        held["metadata"]["resourceVersion"]
    )


def _envoy_stat(node: Node, pod: str, prefix: str, part: str = "") -> int:
    """The sum of the Envoy counters of `pod`'s sidecar named `prefix...part...`."""
    running = node.pods[(NS, pod)]
    out = subprocess.run(
        ["ip", "netns", "exec", running.netns, "curl", "-s", "http://127.0.0.1:15000/stats"],
        capture_output=True, text=True, timeout=5, check=True,
    )  # fmt: skip
    return sum(
        int(v) for k, _, v in (line.partition(": ") for line in out.stdout.splitlines())
        if k.startswith(prefix) and part in k and v.strip().isdigit()
    )  # fmt: skip


def test_kubectl_deployed_mesh_moves_traffic_and_survives_its_leader(
    kubeapi: KubeAPIThread, kubeconfig: Path, kubectl: Kubectl, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "ca"
    assert main(["install", "--kubeconfig", str(kubeconfig), "--ca-dir", str(ca_dir)]) == 0
    net = podnet.PodNetwork().open()
    replicas: list[ControlPlane] = []
    try:
        xds_ports = [free_port(), free_port()]
        xds = ",".join(f"{net.host_ip}:{p}" for p in xds_ports)
        webhook_ports = [free_port(), free_port()]
        for i, (xds_port, webhook_port) in enumerate(zip(xds_ports, webhook_ports, strict=True)):
            replicas.append(
                ControlPlane(
                    None,
                    workdir=tmp_path,
                    name=f"cp-{i}",
                    xds_port=xds_port,
                    extra_args=[
                        "--kubernetes", "--kubeconfig", str(kubeconfig),
                        "--secure", "--ca-dir", str(ca_dir), "--host", "0.0.0.0",
                        "--webhook-port", str(webhook_port), "--proxy-xds-address", xds,
                        "--replica-name", f"cp-{i}",
                        "--lease-ttl", str(LEASE_TTL_S), "--lease-renew", "2",
                        "--lease-retry", "0.3",
                    ],
                ).start()
            )  # fmt: skip
        for cp in replicas:
            cp.wait_ready(timeout=30)
        kubeapi.admission.service_addresses[("shoal-system", "shoal-control-plane")] = (
            "127.0.0.1",
            webhook_ports[0],
        )
        wait_until(lambda: _holder(kubeapi) in ("cp-0", "cp-1"), 10, what="a Lease holder")

        kubectl("apply", "-f", "-", input=APP)
        kubectl("apply", "-f", "-", input=ROUTING + "---\n" + _route_to("v1"))
        kubectl("apply", "-f", "-", input=REVIEWS)
        wait_until(
            lambda: kubeapi.get("v1", "ConfigMap", "istio-ca-root-cert", NS) is not None,
            10,
            what="the leader's root certificate ConfigMap in the namespace",
        )
        with Node(kubeapi, tmp_path, net) as node:
            node.run_until_ready(NS, within=60)
            pod = kubeapi.get("v1", "Pod", "reviews-v1-0", NS)
            assert pod is not None
            # the application is held until its agent is ready: the agent starts first
            assert [c["name"] for c in pod["spec"]["containers"]] == ["istio-proxy", "reviews"]
            # the client comes once what it calls is up (ready, in its slice, on both
            # replicas): from its first request on, not one may fail
            wait_until(
                lambda: all(_informed(kubeapi, cp) for cp in replicas),
                20,
                what="both replicas holding the reviews endpoints",
            )
            kubectl("apply", "-f", "-", input=CLIENT)
            node.run_until_ready(NS, within=60)

            _moves_to(node, "v1", within=30)
            # the reviews sidecar's inbound listener took the calls over mTLS (STRICT)
            assert _envoy_stat(node, "reviews-v1-0", "listener.", ".ssl.handshake") > 0

            # a VirtualService applied with kubectl moves the traffic
            kubectl("apply", "-f", "-", input=_route_to("v2"))
            _moves_to(node, "v2")

            # the leader dies under load; the other replica takes the Lease within its TTL
            leader = _holder(kubeapi)
            survivor = replicas[1 - int(leader[-1])]
            killed_at = time.monotonic()
            replicas[int(leader[-1])].kill()
            # the webhooks' Service now has the survivor as its only endpoint
            kubeapi.admission.service_addresses[("shoal-system", "shoal-control-plane")] = (
                "127.0.0.1",
                webhook_ports[1 - int(leader[-1])],
            )
            wait_until(
                lambda: _holder(kubeapi) == f"cp-{1 - int(leader[-1])}",
                LEASE_TTL_S + 3,
                interval=0.05,
                what="the surviving replica to take the Lease",
            )
            took = time.monotonic() - killed_at
            assert took <= LEASE_TTL_S + 1.0, f"Lease taken after {took:.1f} s"
            wait_until(
                lambda: len(survivor.syncz()) == 3, 20, what="every proxy on the surviving replica"
            )
            kubectl("apply", "-f", "-", input=_route_to("v1"))
            _moves_to(node, "v1")

            stats = _stats(node)
            assert stats["requests"] > 100
            assert stats["success_pct"] == 100.0, stats
            assert stats["errors"] == {} and stats["degraded"] == 0, stats
    finally:
        for cp in replicas:
            cp.stop()
        net.close()
