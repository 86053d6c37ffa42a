"""The admission webhooks over real HTTPS, served by a control plane with a certificate from
shoal's CA: AdmissionReview v1 in, AdmissionReview out (shoal.kube.webhook)."""

from __future__ import annotations

import copy
import json
import ssl
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import pytest
import yaml

from harness.ports import free_port
from shoal.cli.analyze import analyze
from shoal.controlplane.app import ControlPlane, Settings
from shoal.kube.admission import decode_patch
from shoal.kube.validate import describe
from unit.kube.pods import deployment_pod

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


def _review(obj: dict[str, Any], kind: str, group: str = "", op: str = "CREATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
            "namespace": obj.get("metadata", {}).get("namespace", "shop"),
            "operation": op,
            "object": obj,
        },
    }


class Hooks:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def post(self, path: str, review: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.base + path, json=review) as resp:
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = await resp.json()
        assert body["apiVersion"] == "admission.k8s.io/v1"
        assert body["kind"] == "AdmissionReview"
        assert body["response"]["uid"] == review["request"]["uid"]
        return body


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    config = tmp_path / "config"
    config.mkdir()
    settings = Settings(
        config_dir=config,
        xds_port=free_port(),
        admin_port=free_port(),
        ca_dir=tmp_path / "ca",
        webhook_port=0,
    )
    cp = ControlPlane(settings)
    await cp.start()
    try:
        assert cp.webhooks is not None
        # the API server trusts the webhook through caBundle: the mesh's root
        trust = ssl.create_default_context(cafile=str(tmp_path / "ca" / "root-cert.pem"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:
            yield Hooks(f"https://127.0.0.1:{cp.webhooks.port}", http)
    finally:
        await cp.stop()


async def test_inject_answers_a_json_patch_the_pod_accepts(hooks: Hooks) -> None:
    pod = deployment_pod()
    review = _review(pod, "Pod")
    body = await hooks.post("/inject", review)
    response = body["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    before = copy.deepcopy(pod)
    before["metadata"].pop("managedFields")
    injected = jsonpatch.apply_patch(before, decode_patch(body))
    names = [c["name"] for c in injected["spec"]["containers"]]
    assert names == ["istio-proxy", "reviews"]  # the agent first: the app is held for it
    assert injected["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    assert "sidecar.istio.io/status" in injected["metadata"]["annotations"]


async def test_inject_skips_opted_out_pods_and_other_objects(hooks: Hooks) -> None:
    opted_out = deployment_pod(labels={"sidecar.istio.io/inject": "false"})
    for review in (
        _review(opted_out, "Pod"),
        _review(deployment_pod(hostNetwork=True), "Pod"),
        _review(deployment_pod(), "Pod", op="UPDATE"),
    ):
        response = (await hooks.post("/inject", review))["response"]
        assert response == {"uid": review["request"]["uid"], "allowed": True}


async def test_wrong_content_type_and_body(hooks: Hooks) -> None:
    data = json.dumps(_review(deployment_pod(), "Pod"))
    async with hooks.http.post(
        hooks.base + "/inject", data=data, headers={"Content-Type": "text/plain"}
    ) as resp:
        assert resp.status == 415
    async with hooks.http.post(hooks.base + "/validate", json={"kind": "Pod"}) as resp:
        assert resp.status == 400
        assert "AdmissionReview" in await resp.text()


async def test_validate_refuses_with_analyzes_message(hooks: Hooks, tmp_path: Path) -> None:
    obj = yaml.safe_load(BAD_VS)
    obj["metadata"]["uid"] = "5a1b"  # server-set fields do not matter
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body = await hooks.post("/validate", _review(obj, "VirtualService", "networking.istio.io"))
    response = body["response"]
    assert response["allowed"] is False
    message = response["status"]["message"]

    files = tmp_path / "analyze"
    files.mkdir()
    (files / "vs.yaml").write_text(BAD_VS)
    report = analyze(files)
    weight_errors = [e for e in report.errors if "weight" in e.field]
    assert weight_errors, report.errors
    for error in weight_errors:
        assert describe(error) in message
    assert "spec.http[0].route[1].weight" in message
    assert response["status"]["code"] == 400


async def test_validate_accepts_valid_and_unsupported_objects(hooks: Hooks) -> None:
    good = yaml.safe_load(BAD_VS.replace("-5", "50"))
    good["status"] = {"conditions": [{"type": "Reconciled", "status": "True"}]}
    review = _review(good, "VirtualService", "networking.istio.io", op="UPDATE")
    response = (await hooks.post("/validate", review))["response"]
    # allowed, and nothing changed: no patch, the status left alone
    assert response == {"uid": review["request"]["uid"], "allowed": True}

    envoy_filter = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "x", "namespace": "shop"},
        "spec": {"anything": True},
    }
    review = _review(envoy_filter, "EnvoyFilter", "networking.istio.io")
    assert (await hooks.post("/validate", review))["response"]["allowed"] is True


async def test_serving_certificate_is_renewed(tmp_path: Path) -> None:
    """New TLS handshakes get the renewed certificate; the webhooks keep answering."""
    import asyncio
    import datetime as dt

    from shoal.ca.authority import CertificateAuthority
    from shoal.controlplane.webhooks import Webhooks
    from shoal.kube.inject import InjectorSettings

    ca = CertificateAuthority(tmp_path / "ca")
    hooks = Webhooks(ca, InjectorSettings(), renew_every_s=0.2, lifetime=dt.timedelta(minutes=5))
    port = await hooks.start("127.0.0.1", 0)
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca" / "root-cert.pem"))

    async def served_serial() -> bytes:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trust)
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            await writer.wait_closed()
        assert isinstance(der, bytes)
        return der

    try:
        first = await served_serial()
        for _ in range(50):
            await asyncio.sleep(0.1)
            if hooks.renewals >= 1:
                break
        assert hooks.renewals >= 1
        assert await served_serial() != first
        assert hooks.describe()["certificate_renewals"] == hooks.renewals
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http,
            http.post(
                f"https://127.0.0.1:{port}/inject", json=_review(deployment_pod(), "Pod")
            ) as resp,
        ):
            assert (await resp.json())["response"]["allowed"] is True
    finally:
        await hooks.stop()
