"""Tests on the Kubernetes source, in the test's own loop: the fake API server with a shoal
`KubeClient` on it, a control plane on the Kubernetes source, and the Kubernetes objects of a
small mesh (Services, Pods, EndpointSlices)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from harness.kubeapi.runner import write_kubeconfig
from harness.kubeapi.server import KubeAPIServer
from shoal.controlplane.app import ControlPlane, Settings
from shoal.controlplane.kubernetes import KubeSettings
from shoal.kube.client import KubeClient
from shoal.kube.informer import InformerSettings
from shoal.kube.leader import LeaseSettings
from shoal.kube.manifests_crds import crds


@asynccontextmanager
async def fake_api(tmp_path: Path) -> AsyncIterator[tuple[KubeAPIServer, KubeClient]]:
    server = await KubeAPIServer().start()
    client = KubeClient.connect(write_kubeconfig(tmp_path / "kubeconfig", server.url))
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()


def connect(server: KubeAPIServer, tmp_path: Path, name: str) -> KubeClient:
    return KubeClient.connect(write_kubeconfig(tmp_path / f"{name}.kubeconfig", server.url))


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


FAST_INFORMERS = InformerSettings(
    watch_timeout_s=(5.0, 8.0), backoff_initial_s=0.05, backoff_max_s=0.3
)
FAST_LEASE = LeaseSettings(lease_s=1.5, renew_s=1.0, retry_s=0.2)


def install_crds(server: KubeAPIServer) -> None:
    crd = server.type("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    for obj in crds():
        server.create(crd, obj)
    server.create(server.type("v1", "Namespace"), {"metadata": {"name": "shoal-system"}})


@asynccontextmanager
async def kube_control_plane(
    server: KubeAPIServer, tmp_path: Path, *, name: str = "cp-0", config_dir: Path | None = None
) -> AsyncIterator[ControlPlane]:
    kubeconfig = write_kubeconfig(tmp_path / f"{name}.kubeconfig", server.url)
    settings = Settings(
        config_dir=config_dir,
        xds_port=0,
        admin_port=0,
        debounce_s=0.01,
        max_debounce_s=0.05,
        kubernetes=KubeSettings(
            kubeconfig=kubeconfig, identity=name, lease=FAST_LEASE, informer=FAST_INFORMERS
        ),
    )
    cp = ControlPlane(settings)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def service(name: str, ns: str, port: int = 9080, app: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app or name}},
        "spec": {
            "selector": {"app": app or name},
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    }


def pod(name: str, ns: str, ip: str, sa: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"security.istio.io/tlsMode": "istio", **labels},
        },
        "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def endpoint_slice(
    name: str, ns: str, service_name: str, port: int, *endpoints: tuple[str, str, bool]
) -> dict[str, Any]:
    """`endpoints`: (ip, pod name, ready)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod_name},
            }
            for ip, pod_name, ready in endpoints
        ],
    }


def add_service_with_pods(
    server: KubeAPIServer, name: str, ns: str, versions: dict[str, str], port: int = 9080
) -> None:
    """Service `name` with one pod per version (`versions`: version -> pod IP) and a slice."""
    server.create(None, service(name, ns, port))
    eps = []
    for version, ip in versions.items():
        pod_name = f"{name}-{version}"
        server.create(None, pod(pod_name, ns, ip, f"bookinfo-{name}", app=name, version=version))
        eps.append((ip, pod_name, True))
    server.create(None, endpoint_slice(f"{name}-slice", ns, name, port, *eps))
