"""The fake API server against the real kubectl: apply, get, get -w, patch, delete, selectors.

kubectl is the oracle: if it accepts the fake's discovery, Tables, watch streams, patches and
errors, so will client-go-shaped clients. The CRD tests use a VirtualService-like CRD, which is
what users will apply against shoal.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import yaml

from harness.kubeapi import KubeAPIThread
from harness.kubectl import KUBECTL, Kubectl

if not KUBECTL:  # fail clearly rather than skip: .ci/run installs kubectl
    pytest.fail("these tests need kubectl on PATH (.ci/run installs it)", pytrace=False)

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: IMAGE
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: side
        image: busybox
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualservices.networking.istio.io}
spec:
  group: networking.istio.io
  names: {kind: VirtualService, listKind: VirtualServiceList, plural: virtualservices,
          singular: virtualservice, shortNames: [vs]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Gateways, type: string, jsonPath: .spec.gateways}
  - name: v1beta1
    served: true
    storage: false
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: demo, labels: {app: reviews}}
spec:
  hosts: [reviews]
  gateways: [GATEWAY]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""


def _container(deploy: dict[str, Any], name: str) -> dict[str, Any]:
    containers = deploy["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def test_apply_builtins_twice_updates_with_strategic_merge(kubectl: Kubectl) -> None:
    out = kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    assert "namespace/demo created" in out
    assert "deployment.apps/web created" in out
    first = kubectl.json("get", "deployment", "web", "-n", "demo")
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["uid"]

    edited = APP.replace("IMAGE", "nginx:2").replace(
        '{name: B, value: "2"}', '{name: C, value: "3"}'
    )
    out = kubectl("apply", "-f", "-", input=edited)
    assert "deployment.apps/web configured" in out
    assert "service/web unchanged" in out
    second = kubectl.json("get", "deployment", "web", "-n", "demo")
    web = _container(second, "web")
    # kubectl sent a strategic merge patch: containers and env merged by name, B removed.
    assert web["image"] == "nginx:2"
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert _container(second, "side")["image"] == "busybox"
    assert second["metadata"]["generation"] == 2
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["metadata"]["uid"] == first["metadata"]["uid"]


def test_get_prints_server_side_tables(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    lines = kubectl("get", "svc", "-n", "demo").splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "AGE"]
    name, type_, ip, _age = lines[1].split()
    assert (name, type_) == ("web", "ClusterIP")
    assert ip.startswith("10.96.")
    # Across namespaces kubectl reads NAMESPACE from each row's object metadata.
    rows = [line.split()[:2] for line in kubectl("get", "sa", "-A").splitlines()[1:]]
    assert ["demo", "default"] in rows and ["kube-system", "default"] in rows
    as_yaml = yaml.safe_load(kubectl("get", "ns", "demo", "-o", "yaml"))
    assert as_yaml["kind"] == "Namespace"
    assert as_yaml["metadata"]["labels"]["kubernetes.io/metadata.name"] == "demo"
    assert as_yaml["status"]["phase"] == "Active"


def test_crd_then_custom_resources_apply_get_and_versions(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    assert "created" in kubectl("apply", "-f", "-", input=CRD)
    kubectl("wait", "--for", "condition=established", "crd/virtualservices.networking.istio.io")
    assert "virtualservice.networking.istio.io/reviews created" in kubectl(
        "apply", "-f", "-", input=VS.replace("GATEWAY", "gw-a")
    )
    # Custom resources get a JSON merge patch from kubectl (no strategic merge schema).
    assert "configured" in kubectl("apply", "-f", "-", input=VS.replace("GATEWAY", "gw-b"))
    assert "unchanged" in kubectl("apply", "-f", "-", input=VS.replace("GATEWAY", "gw-b"))
    header, row = kubectl("get", "vs", "-n", "demo").splitlines()
    assert header.split() == ["NAME", "GATEWAYS", "AGE"]
    assert row.split()[:2] == ["reviews", '["gw-b"]']
    vs = kubectl.json("get", "virtualservices.v1beta1.networking.istio.io", "reviews", "-n", "demo")
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs["spec"]["gateways"] == ["gw-b"]
    assert vs["metadata"]["generation"] == 2
    resources = kubectl("api-resources", "--api-group=networking.istio.io")
    assert "virtualservices" in resources and "vs" in resources


def test_crd_delete_removes_its_resources(kubectl: Kubectl, kubeapi: KubeAPIThread) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    kubectl("apply", "-f", "-", input=CRD)
    kubectl("apply", "-f", "-", input=VS.replace("GATEWAY", "gw"))
    kubectl("delete", "crd", "virtualservices.networking.istio.io")
    assert kubeapi.registry.lookup("networking.istio.io", "v1", "virtualservices") is None
    proc = kubectl.run("get", "virtualservices.networking.istio.io", "-A", check=False)
    assert proc.returncode != 0
    assert "the server doesn't have a resource type" in proc.stderr


def _read_events(proc: Any, n: int, into: list[dict[str, Any]]) -> None:
    # kubectl -w -o json --output-watch-events prints one event per line.
    for line in proc.stdout:
        into.append(json.loads(line))
        if len(into) == n:
            return


def test_get_watch_sees_every_change(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    proc = kubectl.popen("get", "cm", "-n", "demo", "-w", "--output-watch-events", "-o", "json")
    events: list[dict[str, Any]] = []
    reader = threading.Thread(target=_read_events, args=(proc, 3, events), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # the watch is open once kubectl has listed (nothing to print)
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c1", "namespace": "demo"},
            "data": {"a": "1"},
        }
        kubectl("apply", "-f", "-", input=json.dumps(cm))
        kubectl("patch", "cm", "c1", "-n", "demo", "--type", "merge", "-p", '{"data":{"b":"2"}}')
        kubectl("delete", "cm", "c1", "-n", "demo")
        reader.join(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"a": "1", "b": "2"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_patch_merge_json_and_conflict(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    kubectl(
        "patch",
        "svc",
        "web",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"labels":{"tier":"front"}}}',
    )
    kubectl(
        "patch",
        "svc",
        "web",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/ports/0/port","value":8080}]',
    )
    side = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "alpine"}]}}}}
    kubectl("patch", "deploy", "web", "-n", "demo", "-p", json.dumps(side))  # strategic merge
    svc = kubectl.json("get", "svc", "web", "-n", "demo")
    assert svc["metadata"]["labels"] == {"tier": "front"}
    assert svc["spec"]["ports"][0]["port"] == 8080
    deploy = kubectl.json("get", "deploy", "web", "-n", "demo")
    assert _container(deploy, "side")["image"] == "alpine"
    assert _container(deploy, "web")["image"] == "nginx:1"
    proc = kubectl.run(
        "patch",
        "svc",
        "web",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/type","value":"NodePort"}]',
        check=False,
    )
    # kubectl 1.32 prints the message, 1.20 only "The request is invalid".
    assert proc.returncode != 0 and ("test failed" in proc.stderr or "invalid" in proc.stderr)
    assert kubectl.json("get", "svc", "web", "-n", "demo")["spec"]["type"] == "ClusterIP"
    stale = dict(svc)
    stale["metadata"] = {**svc["metadata"], "resourceVersion": "1"}
    proc = kubectl.run("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert proc.returncode != 0
    assert "the object has been modified" in proc.stderr


def test_delete_with_and_without_finalizers(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    meta = {"name": "held", "namespace": "demo", "finalizers": ["x.io/hold"]}
    held = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    kubectl("apply", "-f", "-", input=json.dumps(held))
    kubectl("delete", "cm", "held", "-n", "demo", "--wait=false")
    cm = kubectl.json("get", "cm", "held", "-n", "demo")
    assert cm["metadata"]["deletionTimestamp"]
    # A waiting delete returns once the finalizer goes.
    waiting = kubectl.popen("delete", "cm", "held", "-n", "demo", "--timeout=20s")
    time.sleep(0.5)
    assert waiting.poll() is None
    kubectl(
        "patch",
        "cm",
        "held",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    assert waiting.wait(timeout=15) == 0
    waiting.communicate()
    assert "not found" in kubectl.run("get", "cm", "held", "-n", "demo", check=False).stderr
    # Without finalizers: gone at once; deleting the namespace takes its contents along.
    assert 'service "web" deleted' in kubectl("delete", "svc", "web", "-n", "demo")
    assert 'namespace "demo" deleted' in kubectl("delete", "ns", "demo", "--timeout=20s")
    assert "No resources found" in kubectl.run("get", "deploy", "-A").stderr


def test_label_and_field_selectors(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    for name, labels in [("a", {"app": "x", "tier": "1"}), ("b", {"app": "y"}), ("c", {})]:
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "demo", "labels": labels},
        }
        kubectl("apply", "-f", "-", input=json.dumps(cm))

    def names(*selector: str) -> list[str]:
        out = kubectl("get", "cm", "-n", "demo", "-o", "name", *selector)
        return sorted(line.split("/")[1] for line in out.split())

    assert names("-l", "app=x") == ["a"]
    assert names("-l", "app in (x,y)") == ["a", "b"]
    assert names("-l", "app notin (x)") == ["b", "c"]
    assert names("-l", "!app") == ["c"]
    assert names("-l", "app,tier") == ["a"]
    assert names("-l", "app,tier!=1") == ["b"]  # != also matches objects without the label
    assert names("--field-selector", "metadata.name!=a", "-l", "app") == ["b"]
    proc = kubectl.run("get", "cm", "-n", "demo", "--field-selector", "data.x=1", check=False)
    assert proc.returncode != 0 and "not a known field selector" in proc.stderr


def test_plain_discovery_fallback(kubectl: Kubectl, kubeapi: KubeAPIThread) -> None:
    kubeapi.server.settings.aggregated_discovery = False
    out = kubectl("api-resources")
    assert "endpointslices" in out and "leases" in out
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    assert "web" in kubectl("get", "deploy", "-n", "demo")
    assert not any("g=apidiscovery" in p for _, p in kubeapi.server.requests)


def test_typed_create_commands_send_protobuf(kubectl: Kubectl, kubeapi: KubeAPIThread) -> None:
    # kubectl create/label as a README would have a user type them.
    assert "namespace/shop created" in kubectl("create", "namespace", "shop")
    kubectl("label", "namespace", "shop", "istio-injection=enabled")
    kubectl("create", "configmap", "c", "-n", "shop", "--from-literal=a=1")
    kubectl("create", "secret", "generic", "s", "-n", "shop", "--from-literal=pw=hunter2")
    kubectl("create", "serviceaccount", "app", "-n", "shop")
    ns = kubectl.json("get", "ns", "shop")
    assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
    assert kubectl.json("get", "cm", "c", "-n", "shop")["data"] == {"a": "1"}
    secret = kubectl.json("get", "secret", "s", "-n", "shop")
    assert secret["data"] == {"pw": "aHVudGVyMg=="} and secret["type"] == "Opaque"
    if kubectl.minor >= 24:  # kubectl create token, and protobuf bodies for typed creates
        token = kubectl("create", "token", "app", "-n", "shop", "--audience", "istio-ca").strip()
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": ["istio-ca"]},
        }
        out = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)))
        assert out["status"]["user"]["username"] == "system:serviceaccount:shop:app"
        assert out["status"]["authenticated"] is True
        protobuf = ("/api/v1/namespaces", "application/vnd.kubernetes.protobuf")
        assert protobuf in kubeapi.body_types
        # A kind the fake cannot decode from protobuf is a clear 415, not a crash.
        proc = kubectl.run("create", "deployment", "d", "--image=x", "-n", "shop", check=False)
        assert proc.returncode != 0 and "protobuf (Deployment)" in proc.stderr


def test_scale_subresource(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=APP.replace("IMAGE", "nginx:1"))
    assert "deployment.apps/web scaled" in kubectl(
        "scale", "deploy", "web", "-n", "demo", "--replicas=5"
    )
    deploy = kubectl.json("get", "deploy", "web", "-n", "demo")
    assert deploy["spec"]["replicas"] == 5 and deploy["metadata"]["generation"] == 2
    scale = json.loads(
        kubectl("get", "--raw", "/apis/apps/v1/namespaces/demo/deployments/web/scale")
    )
    assert scale["kind"] == "Scale" and scale["status"]["selector"] == "app=web"
