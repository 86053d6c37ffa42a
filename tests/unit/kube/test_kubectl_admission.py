"""`shoal install` into the fake API server, then the real kubectl against it: an invalid
Istio resource is refused at `kubectl apply` time with `shoal analyze`'s message, valid ones
are accepted with their status left alone by the webhook (the leader's own status is a merge
patch of its fields, other writers' stay), and pods in a labelled namespace come back with a
sidecar. The webhooks are served over HTTPS by a real `shoal control-plane --kubernetes
--secure --webhook-port`, as the Deployment runs it, trusted by the fake through the caBundle
`shoal install` wrote."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.kubeapi import KubeAPIThread
from harness.kubectl import Kubectl
from harness.ports import free_port
from harness.wait import wait_until
from shoal.cli.analyze import analyze
from shoal.cli.main import main
from shoal.kube.validate import describe

BAD_VS = textwrap.dedent(
    """\
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: reviews
      namespace: shop
    spec:
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews, subset: v1}
          weight: 50
        - destination: {host: reviews, subset: v2}
          weight: -5
    """
)
GOOD_VS = BAD_VS.replace("-5", "50")
POD = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata:
      name: reviews-v1
      namespace: {ns}
      labels: {{app: reviews, version: v1}}
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.1
        ports: [{{containerPort: 9080}}]
    """
)


def _namespace(kubectl: Kubectl, name: str, **labels: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    kubectl("apply", "-f", "-", input=json.dumps(doc))


def _wait_port(port: int, proc: subprocess.Popen[bytes], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the control plane exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {within} s")


@dataclass(frozen=True)
class Cluster:
    """The fake with shoal installed and a control plane serving its webhooks."""

    api: KubeAPIThread
    kubeconfig: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One fake and one control plane for the module's admission tests (each test works in
    its own namespaces): starting them is most of what these tests cost."""
    tmp = tmp_path_factory.mktemp("cluster")
    with KubeAPIThread() as api:
        kubeconfig = api.kubeconfig(tmp / "kubeconfig")
        ca_dir = tmp / "ca"
        assert main(["install", "--kubeconfig", str(kubeconfig), "--ca-dir", str(ca_dir)]) == 0
        webhook_port = free_port()
        stderr = (tmp / "control-plane.stderr").open("wb")
        proc = subprocess.Popen(
            [
                # as the Deployment runs it (manifests.py), against the fake
                sys.executable, "-m", "shoal.cli.main", "control-plane",
                "--kubernetes", "--kubeconfig", str(kubeconfig), "--secure",
                "--xds-port", str(free_port()),
                "--admin-port", str(free_port()),
                "--ca-dir", str(ca_dir),
                "--webhook-port", str(webhook_port),
            ],
            stderr=stderr,
        )  # fmt: skip
        try:
            _wait_port(webhook_port, proc)
            # the cluster's DNS for the webhooks' Service reference
            api.admission.service_addresses[("shoal-system", "shoal-control-plane")] = (
                "127.0.0.1",
                webhook_port,
            )
            yield Cluster(api, kubeconfig)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            stderr.close()


@pytest.fixture
def kc(cluster: Cluster, tmp_path: Path) -> Kubectl:
    """kubectl against the module's cluster, with this test's own discovery cache."""
    return Kubectl(cluster.kubeconfig, tmp_path)


def test_install_applies_everything_and_reapplies(
    kubeconfig: Path, kubectl: Kubectl, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["install", "--kubeconfig", str(kubeconfig), "--replicas", "3"]) == 0
    first = capsys.readouterr().out
    assert "created CustomResourceDefinition virtualservices.networking.istio.io" in first
    assert "created Secret shoal-system/shoal-ca" in first
    crds = kubectl.json("get", "crd")["items"]
    assert "virtualservices.networking.istio.io" in {c["metadata"]["name"] for c in crds}
    deploy = kubectl.json("get", "deployment", "-n", "shoal-system", "shoal-control-plane")
    assert deploy["spec"]["replicas"] == 3
    svc = kubectl.json("get", "service", "-n", "shoal-system", "shoal-control-plane")
    assert {p["port"] for p in svc["spec"]["ports"]} >= {15012, 443, 15014}
    hooks = kubectl.json("get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
    bundle = hooks["webhooks"][0]["clientConfig"]["caBundle"]
    secret = kubectl.json("get", "secret", "-n", "shoal-system", "shoal-ca")
    assert bundle == secret["data"]["trusted-roots.pem"]

    # a re-install updates what exists and keeps the cluster's CA
    assert main(["install", "--kubeconfig", str(kubeconfig), "--replicas", "2"]) == 0
    second = capsys.readouterr().out
    assert "keeping the cluster's CA" in second
    assert "updated Deployment shoal-system/shoal-control-plane" in second
    assert "created" not in second
    deploy = kubectl.json("get", "deployment", "-n", "shoal-system", "shoal-control-plane")
    assert deploy["spec"]["replicas"] == 2
    again = kubectl.json("get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
    assert again["webhooks"][0]["clientConfig"]["caBundle"] == bundle


def test_kubectl_apply_refuses_invalid_with_analyzes_message(kc: Kubectl, tmp_path: Path) -> None:
    _namespace(kc, "shop")
    (tmp_path / "bad.yaml").write_text(BAD_VS)
    refused = kc.run("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "validation.istio.io" denied the request' in refused.stderr

    files = tmp_path / "analyze"
    files.mkdir()
    (files / "vs.yaml").write_text(BAD_VS)
    errors = [e for e in analyze(files).errors if "weight" in e.field]
    assert errors
    for error in errors:
        assert describe(error) in refused.stderr  # field path and why, as analyze says it
    assert kc.run("get", "vs", "-n", "shop", "reviews", check=False).returncode != 0


def _write_status(api: KubeAPIThread, ns: str, status: dict[str, object]) -> None:
    # what a status writer does (kubectl patch --subresource=status needs kubectl >= 1.24)
    path = f"/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices/reviews/status"
    request = urllib.request.Request(
        api.server.url + path,
        data=json.dumps({"status": status}).encode(),
        method="PATCH",
        headers={
            "Content-Type": "application/merge-patch+json",
            "Authorization": "Bearer fake-admin-token",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def test_valid_resources_are_accepted_and_their_status_left_alone(
    cluster: Cluster, kc: Kubectl, tmp_path: Path
) -> None:
    _namespace(kc, "accepted")
    good = GOOD_VS.replace("namespace: shop", "namespace: accepted")
    (tmp_path / "good.yaml").write_text(good)
    kc("apply", "-f", str(tmp_path / "good.yaml"))
    # another status writer's field: neither the webhook nor shoal's own status writes
    # (a merge patch of conditions, observedGeneration, validationMessages) touch it
    other = {"by": "someone else"}
    _write_status(cluster.api, "accepted", {"other": other})
    # an update goes through the webhook too, and is accepted as it is
    updated = good.replace("weight: 50\n", "weight: 40\n", 1).replace("weight: 50", "weight: 60")
    (tmp_path / "good.yaml").write_text(updated)
    kc("apply", "-f", str(tmp_path / "good.yaml"))
    vs = kc.json("get", "vs", "-n", "accepted", "reviews")
    assert vs["spec"]["http"][0]["route"][0]["weight"] == 40
    assert vs["metadata"]["generation"] == 2
    # the control plane (the Lease holder) reports on generation 2 through /status
    wait_until(
        lambda: (
            (kc.json("get", "vs", "-n", "accepted", "reviews").get("status") or {}).get(
                "observedGeneration"
            )
            == 2
        ),
        20,
        what="the status of generation 2",
    )
    status = kc.json("get", "vs", "-n", "accepted", "reviews")["status"]
    assert status["other"] == other
    assert [c["type"] for c in status["conditions"]] == ["Reconciled"]


def test_pods_in_a_labelled_namespace_get_a_sidecar(kc: Kubectl, tmp_path: Path) -> None:
    _namespace(kc, "injected")
    kc("label", "namespace", "injected", "istio-injection=enabled")
    _namespace(kc, "plain")
    for ns in ("injected", "plain"):
        (tmp_path / f"{ns}.yaml").write_text(POD.format(ns=ns))
        kc("apply", "-f", str(tmp_path / f"{ns}.yaml"))

    pod = kc.json("get", "pod", "-n", "injected", "reviews-v1")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["istio-proxy", "reviews"]
    proxy = pod["spec"]["containers"][0]
    assert proxy["command"] == ["shoal"] and proxy["args"][0] == "agent"
    assert pod["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    assert pod["metadata"]["labels"]["service.istio.io/canonical-name"] == "reviews"
    status = json.loads(pod["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"]
    volumes = {v["name"] for v in pod["spec"]["volumes"]}
    assert {"istio-token", "istiod-ca-cert"} <= volumes

    plain = kc.json("get", "pod", "-n", "plain", "reviews-v1")
    assert [c["name"] for c in plain["spec"]["containers"]] == ["reviews"]


def test_injection_warnings_reach_kubectl(kc: Kubectl, tmp_path: Path) -> None:
    _namespace(kc, "warned", **{"istio-injection": "enabled"})
    pod = POD.format(ns="warned").replace(
        "  labels:", "  annotations: {sidecar.istio.io/interceptionMode: REDIRECT}\n  labels:"
    )
    (tmp_path / "pod.yaml").write_text(pod)
    applied = kc.run("apply", "-f", str(tmp_path / "pod.yaml"))
    assert "Warning:" in applied.stderr and "interception mode NONE" in applied.stderr
    created = kc.json("get", "pod", "-n", "warned", "reviews-v1")
    assert created["metadata"]["annotations"]["sidecar.istio.io/interceptionMode"] == "NONE"
