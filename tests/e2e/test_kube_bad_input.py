"""Bad input from Kubernetes, with real Envoy: the mesh keeps its last good config.

``shoal control-plane --kubernetes`` (a subprocess) on the fake API server, one real Envoy
sidecar routing to two real backends through a Kubernetes Service, EndpointSlices and a
VirtualService sending everything to v1.

1. A VirtualService written past the validating webhook (straight into the API server's
   store) that would send traffic to v2 with a weight that is not a number: traffic stays on
   v1, ``/debug/config`` names kind, namespace/name, field and source, the control plane logs
   it, and the leader posts a Warning Event on the object.
2. The API server goes away: the sidecar keeps routing to v1, and a sidecar that connects
   only now gets the whole last good config from the control plane's cache. Meanwhile the
   VirtualService is fixed (to v2) and the history compacted, so the control plane's watches
   cannot resume: when the API server comes back it lists again (410 Gone) and the fix
   reaches the sidecars.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json
from harness.backend import Backend
from harness.controlplane import ControlPlane, wait_synced
from harness.envoy import EnvoyProcess, sidecar_bootstrap, sidecar_node
from harness.kubeapi import KubeAPIThread
from harness.kubecp import endpoint_slice, install_crds, namespace, pod, service
from harness.load import fire
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

NS = "shop"
HOST = f"reviews.{NS}.svc.cluster.local"
SOURCE = f"kubernetes:VirtualService/{NS}/reviews"


def _vs(subset: str, weight: object = 100) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": NS},
        "spec": {
            "hosts": [HOST],
            "http": [{"route": [{"destination": {"host": HOST, "subset": subset},
                                 "weight": weight}]}],
        },
    }  # fmt: skip


DR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": NS},
    "spec": {
        "host": HOST,
        "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")],
    },
}


def _seed(api: KubeAPIThread, backends: dict[str, Backend]) -> None:
    install_crds(api.server)
    api.server.create(None, namespace(NS))
    api.server.create(None, service("reviews", NS, port=80))
    for version, backend in backends.items():
        name = f"reviews-{version}"
        api.server.create(None, pod(name, NS, "127.0.0.1", "reviews", app="reviews",
                                    version=version))  # fmt: skip
        # one slice per backend: both listen on 127.0.0.1, each on its own port
        endpoint = ("127.0.0.1", name, True)
        slice_ = endpoint_slice(f"reviews-{version}-x", NS, "reviews", backend.port, endpoint)
        api.server.create(None, slice_)
    api.server.create(None, DR)
    api.server.create(None, _vs("v1"))


def _sidecar(cp: ControlPlane, envoy_factory: Any, name: str) -> tuple[EnvoyProcess, int]:
    outbound = free_port()
    node_id, meta = sidecar_node(name, outbound_port=outbound, inbound_port=free_port())
    # no TLS mode label on the pods: plaintext, as the file mesh's e2e tests
    meta["LABELS"] = {"app": name}
    envoy = envoy_factory(sidecar_bootstrap(node_id, meta, cp.xds_port, free_port()), name=name)
    return envoy, outbound


def _only(port: int, version: str, n: int = 30) -> dict[str, int]:
    counts = fire(port, HOST, n)
    assert counts == {"status:200": n, version: n}, counts
    return counts


def _reaches_only(port: int, version: str) -> bool:
    counts = fire(port, HOST, 10)
    return counts == {"status:200": 10, version: 10}


def _informers(cp: ControlPlane) -> dict[str, dict[str, Any]]:
    informers: dict[str, dict[str, Any]] = get_json(cp.admin_url + "/debug/kubernetes")["informers"]
    return informers


def _events(api: KubeAPIThread) -> list[dict[str, Any]]:
    return [
        e
        for e in api.objects("v1", "Event", NS)
        if e["involvedObject"].get("name") == "reviews"
        and e["involvedObject"].get("kind") == "VirtualService"
    ]


def test_invalid_objects_and_a_vanished_api_server_keep_the_last_good_config(
    kubeapi: KubeAPIThread,
    tmp_path: Path,
    backend_factory: Any,
    envoy_factory: Any,
) -> None:
    backends = {v: backend_factory(v) for v in ("v1", "v2")}
    kubeapi.call(_seed, kubeapi, backends)
    kubeconfig = kubeapi.kubeconfig(tmp_path / "cp.kubeconfig")
    cp = ControlPlane(
        None, workdir=tmp_path, name="kube-cp",
        extra_args=["--kubernetes", "--kubeconfig", str(kubeconfig), "--replica-name", "cp-0",
                    "--lease-ttl", "3", "--lease-renew", "2", "--lease-retry", "0.5"],
    )  # fmt: skip
    with cp:
        cp.wait_ready(timeout=30)
        envoy, port = _sidecar(cp, envoy_factory, "productpage")
        wait_synced(cp, 1, timeout=15)
        wait_until(lambda: _reaches_only(port, "v1"), 15, what="v1 through the sidecar")
        assert cp.config_status()["errors"] == []

        # 1. past the webhook: it would send everything to v2, with a weight that is no number
        vs_type = kubeapi.call(kubeapi.server.type, "networking.istio.io/v1", "VirtualService")
        held = kubeapi.get("networking.istio.io/v1", "VirtualService", "reviews", NS)
        bad = copy.deepcopy(held)
        bad["spec"] = _vs("v2", weight="lots")["spec"]
        kubeapi.call(kubeapi.server.store.update, vs_type, bad, None)

        def vs_errors() -> list[dict[str, Any]]:
            return [e for e in cp.config_status()["errors"] if e["file"] == SOURCE]

        (err,) = wait_until(vs_errors, 10, what=f"an error for {SOURCE} in /debug/config")
        assert (err["kind"], err["name"]) == ("VirtualService", f"{NS}/reviews"), err
        assert err["field"] == "spec.http[0].route[0].weight", err
        assert "keeping its last good version" in err["message"], err
        wait_until(
            lambda: (
                f"{SOURCE}:1: VirtualService {NS}/reviews: spec.http[0].route[0].weight"
                in cp.stderr_text()
            ),
            5,
            what="the error on the control plane's stderr",
        )
        (event,) = wait_until(lambda: _events(kubeapi), 15, what="a Warning Event on the VS")
        assert (event["type"], event["reason"]) == ("Warning", "InvalidConfig"), event
        assert "spec.http[0].route[0].weight" in event["message"], event
        assert event["involvedObject"]["uid"] == bad["metadata"]["uid"], event
        _only(port, "v1")

        # 2. the API server goes away: every proxy keeps the last good config
        version = cp.config_status()["version"]
        kubeapi.go_away()
        wait_until(
            lambda: all(i["errors"] > 0 for i in _informers(cp).values()),
            20,
            what="every informer to notice the API server is gone",
        )
        _only(port, "v1")
        late, late_port = _sidecar(cp, envoy_factory, "latecomer")
        wait_synced(cp, 2, timeout=15)
        _only(late_port, "v1")
        assert cp.config_status()["version"] == version
        assert [e["file"] for e in cp.config_status()["errors"]] == [SOURCE]

        # fixed while it is away, and the history the watches would resume from is gone
        fixed = copy.deepcopy(bad)
        fixed["spec"] = _vs("v2")["spec"]
        kubeapi.call(kubeapi.server.store.update, vs_type, fixed, None)
        kubeapi.compact()
        kubeapi.come_back()
        for p in (port, late_port):
            wait_until(lambda p=p: _reaches_only(p, "v2"), 60, what="the fix through a sidecar")
        assert vs_errors() == []
        assert _informers(cp)["VirtualService"]["relists_after_expiry"] >= 1
        for e in (envoy, late):
            stats = e.stats()
            assert stats["cluster_manager.cds.update_rejected"] == 0
            assert stats["listener_manager.lds.update_rejected"] == 0
