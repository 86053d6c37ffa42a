"""Istio's own samples applied with the real `kubectl apply -f`, unchanged, to the fake API
server: the control plane on the Kubernetes source accepts them and generates exactly the
Envoy config the same YAML gives from files (same services, same proxies, same bytes).

The YAML is the corpus's (../shared/corpus): bookinfo's destination rules, virtual services
and gateway, and the security tasks' AuthorizationPolicies and PeerAuthentications. The
bookinfo Services, Pods and EndpointSlices they route to are created in the fake first (the
corpus holds no bookinfo.yaml); the file side gets the same registry services, so the only
difference between the two sides is where the Istio YAML came from.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from harness.kubeapi.runner import write_kubeconfig
from harness.kubeapi.server import KubeAPIServer
from harness.kubecp import add_service_with_pods, install_crds, kube_control_plane, namespace, until
from shoal.engine import Pipeline
from shoal.model import Proxy, parse_proxy

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
BOOKINFO = CORPUS / "istio" / "samples" / "bookinfo" / "networking"
SECURITY = CORPUS / "istio.io" / "content" / "en" / "docs" / "tasks" / "security"
SAMPLES = [
    BOOKINFO / "destination-rule-all.yaml",
    BOOKINFO / "virtual-service-all-v1.yaml",
    BOOKINFO / "bookinfo-gateway.yaml",
    *sorted((SECURITY / "authorization" / "authz-http" / "snips").glob("*.yaml")),
    SECURITY / "authentication" / "authn-policy" / "snips" / "snip_namespacewide_policy_1.yaml",
]

if shutil.which("kubectl") is None:  # fail clearly rather than skip: .ci/run installs kubectl
    pytest.fail("this test needs kubectl on PATH (.ci/run installs it)", pytrace=False)


def _proxies() -> list[Proxy]:
    def sidecar(app: str, version: str, sa: str) -> Proxy:
        pod = f"{app}-{version}"
        meta = {
            "NAMESPACE": "default",
            "SERVICE_ACCOUNT": sa,
            "LABELS": {"app": app, "version": version},
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": "15001",
            "INBOUND_PORT": "15006",
            "WORKLOAD_NAME": pod,
        }
        return parse_proxy(f"sidecar~10.0.0.9~{pod}.default~default.svc.cluster.local", meta)

    gateway = parse_proxy(
        "router~10.0.0.10~ingress.default~default.svc.cluster.local",
        {"NAMESPACE": "default", "LABELS": {"istio": "ingressgateway"}},
    )
    return [
        sidecar("productpage", "v1", "bookinfo-productpage"),
        sidecar("reviews", "v2", "bookinfo-reviews"),
        sidecar("ratings", "v1", "bookinfo-ratings"),
        gateway,
    ]


def _resources(view: object) -> dict[str, dict[str, bytes]]:
    resources = view.resources
    return {t: {n: r.any_bytes for n, r in m.items()} for t, m in resources.items()}


async def _kubectl(kubeconfig: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_kubectl_applied_istio_samples_generate_what_the_same_files_do(
    tmp_path: Path,
) -> None:
    server = await KubeAPIServer().start()
    try:
        install_crds(server)
        server.create(None, namespace("foo"))
        add_service_with_pods(server, "productpage", "default", {"v1": "10.1.0.1"})
        add_service_with_pods(server, "details", "default", {"v1": "10.1.0.2"})
        add_service_with_pods(server, "ratings", "default", {"v1": "10.1.0.3"})
        add_service_with_pods(
            server, "reviews", "default", {"v1": "10.1.0.4", "v2": "10.1.0.5", "v3": "10.1.0.6"}
        )
        kubeconfig = write_kubeconfig(tmp_path / "kubectl.kubeconfig", server.url)
        async with kube_control_plane(server, tmp_path) as cp:
            for sample in SAMPLES:
                out = await _kubectl(kubeconfig, "apply", "-f", str(sample))
                assert "created" in out or "configured" in out, out
            expected = sum(1 for s in SAMPLES for d in s.read_text().split("\n---") if "kind:" in d)

            def applied() -> bool:
                snap = cp.snapshot
                return snap is not None and len(cp.store.resources) == expected

            await until(applied, within=15)
            assert cp.errors == (), [str(e) for e in cp.errors]
            kube = cp.pipeline

            files = Pipeline("files")
            files.apply(registry=kube.registry, registry_namespaces=kube.registry_namespaces)
            build = files.load({s.name: s.read_text() for s in SAMPLES})
            assert files.errors == (), [str(e) for e in files.errors]
            assert len(files.store.resources) == expected

            assert kube.generation is not None
            for proxy in _proxies():
                from_kube = _resources(kube.generation.view(proxy))
                from_files = _resources(build.generation.view(proxy))
                assert from_kube == from_files, proxy.node_id
                assert any(from_kube.values()), proxy.node_id
    finally:
        await server.stop()
