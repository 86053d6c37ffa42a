"""Admission: the fake API server calls registered webhooks over HTTPS, as the real one does.

A small HTTPS webhook (stdlib, own certificate) stands in for shoal's injector and validator.
Checked: AdmissionReview v1 requests (uid, kind, operation, namespace, the object before
uid/creationTimestamp exist), the mutating JSONPatch applied to the stored Pod, namespace and
object selectors, service references resolved through the test's map and verified against
the caBundle as ``<svc>.<ns>.svc``, refusals with the webhook's message as kubectl prints it,
warnings, and failurePolicy Fail/Ignore when the webhook cannot be reached.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.kubeapi import KubeAPIThread
from harness.kubeapi.certs import self_signed
from harness.kubectl import Kubectl

Review = dict[str, Any]
Answer = Callable[[Review], dict[str, Any]]


class Webhook:
    """HTTPS server answering AdmissionReviews with ``answer(request)``."""

    def __init__(self, tmp: Path, answer: Answer, dns: str = "hook.sys.svc") -> None:
        cert, key = self_signed("hook", [dns], [ipaddress.ip_address("127.0.0.1")])
        self.ca_bundle = base64.b64encode(cert).decode()
        (tmp / "hook.crt").write_bytes(cert)
        (tmp / "hook.key").write_bytes(key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tmp / "hook.crt", tmp / "hook.key")
        self.reviews: list[Review] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.reviews.append({"path": self.path, **review["request"]})
                response = {"uid": review["request"]["uid"], **answer(review["request"])}
                body = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": response,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(ops).encode()).decode(),
    }


def inject(request: Review) -> dict[str, Any]:
    return _patch(
        [
            {"op": "add", "path": "/metadata/labels/security.istio.io~1tlsMode", "value": "istio"},
            {
                "op": "add",
                "path": "/spec/containers/-",
                "value": {"name": "istio-proxy", "image": "shoal"},
            },
        ]
    )


def validate(request: Review) -> dict[str, Any]:
    if (request["object"].get("data") or {}).get("bad"):
        return {"allowed": False, "status": {"code": 400, "message": "data.bad: must not be set"}}
    return {"allowed": True, "warnings": ["data looks fine"]}


@pytest.fixture
def webhooks(tmp_path: Path) -> Iterator[Callable[..., Webhook]]:
    started: list[Webhook] = []

    def make(answer: Answer, dns: str = "hook.sys.svc") -> Webhook:
        hook = Webhook(tmp_path, answer, dns)
        started.append(hook)
        return hook

    yield make
    for hook in started:
        hook.stop()


def _mutating(hook: Webhook, **override: Any) -> dict[str, Any]:
    webhook = {
        "name": "sidecar-injector.istio.io",
        "clientConfig": {
            "service": {"name": "hook", "namespace": "sys", "path": "/inject", "port": 443},
            "caBundle": hook.ca_bundle,
        },
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "namespaceSelector": {"matchLabels": {"istio-injection": "enabled"}},
        "objectSelector": {
            "matchExpressions": [
                {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
            ]
        },
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **override,
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-sidecar-injector"},
        "webhooks": [webhook],
    }


def _pod(name: str, ns: str, **labels: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "x", **labels}},
            "spec": {"containers": [{"name": "app", "image": "app"}]},
        }
    )


def _namespaces(kubectl: Kubectl) -> None:
    for ns, labels in (("shop", {"istio-injection": "enabled"}), ("plain", {})):
        kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": labels},
                }
            ),
        )


def test_pod_create_is_mutated_by_the_injection_webhook(
    kubectl: Kubectl, kubeapi: KubeAPIThread, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(inject)
    kubeapi.map_service("sys", "hook", "127.0.0.1", hook.port)
    _namespaces(kubectl)
    kubectl("apply", "-f", "-", input=json.dumps(_mutating(hook)))
    kubectl("apply", "-f", "-", input=_pod("p1", "shop"))
    pod = kubectl.json("get", "pod", "p1", "-n", "shop")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app", "istio-proxy"]
    assert pod["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    [review] = hook.reviews
    assert review["path"] == "/inject"
    assert review["operation"] == "CREATE" and review["namespace"] == "shop"
    assert review["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert review["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert review["userInfo"]["username"]
    # Mutating admission runs before the server stamps uid and creationTimestamp.
    assert "uid" not in review["object"]["metadata"]
    assert review["object"]["spec"]["serviceAccountName"] == "default"
    # Not called where the selectors say no.
    kubectl("apply", "-f", "-", input=_pod("p2", "plain"))
    kubectl("apply", "-f", "-", input=_pod("p3", "shop", **{"sidecar.istio.io/inject": "false"}))
    assert len(hook.reviews) == 1
    assert len(kubectl.json("get", "pod", "p2", "-n", "plain")["spec"]["containers"]) == 1
    # UPDATE is not in the rules.
    kubectl("label", "pod", "p1", "-n", "shop", "more=1")
    assert len(hook.reviews) == 1


def test_validating_webhook_refuses_with_its_message(
    kubectl: Kubectl, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(validate, dns="127.0.0.1")
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "istio-validator"},
        "webhooks": [
            {
                "name": "validation.istio.io",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{hook.port}/validate",
                    "caBundle": hook.ca_bundle,
                },
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["configmaps"],
                    }
                ],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
    kubectl("apply", "-f", "-", input=json.dumps(config))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    proc = kubectl.run("apply", "-f", "-", input=json.dumps(cm))
    assert "Warning: data looks fine" in proc.stderr
    cm["data"] = {"bad": "1"}
    proc = kubectl.run("apply", "-f", "-", input=json.dumps(cm), check=False)
    assert proc.returncode != 0
    assert (
        'admission webhook "validation.istio.io" denied the request: data.bad: must not be set'
        in proc.stderr
    )
    assert kubectl.json("get", "cm", "c")["data"] == {"a": "1"}
    assert [r["operation"] for r in hook.reviews] == ["CREATE", "UPDATE"]
    assert hook.reviews[1]["oldObject"]["data"] == {"a": "1"}
    assert hook.reviews[1]["object"]["metadata"]["uid"]  # validating sees the stamped object


def test_failure_policy_when_the_webhook_cannot_be_called(
    kubectl: Kubectl, kubeapi: KubeAPIThread, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(inject, dns="other.name.svc")  # its certificate does not name hook.sys.svc
    kubeapi.map_service("sys", "hook", "127.0.0.1", hook.port)
    _namespaces(kubectl)
    kubectl("apply", "-f", "-", input=json.dumps(_mutating(hook)))
    proc = kubectl.run("apply", "-f", "-", input=_pod("p1", "shop"), check=False)
    assert proc.returncode != 0
    assert 'failed calling webhook "sidecar-injector.istio.io"' in proc.stderr
    assert hook.reviews == []
    kubectl("apply", "-f", "-", input=json.dumps(_mutating(hook, failurePolicy="Ignore")))
    kubectl("apply", "-f", "-", input=_pod("p1", "shop"))
    assert len(kubectl.json("get", "pod", "p1", "-n", "shop")["spec"]["containers"]) == 1
    # An unmapped service is a call failure too.
    kubeapi.call(kubeapi.server.admission.service_addresses.clear)
    kubectl("apply", "-f", "-", input=json.dumps(_mutating(hook, failurePolicy="Fail")))
    proc = kubectl.run("apply", "-f", "-", input=_pod("p2", "shop"), check=False)
    assert proc.returncode != 0 and "has no address" in proc.stderr
