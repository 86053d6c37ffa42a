"""Gateway API on Kubernetes, against the fake API server: the control plane watches Gateways
and routes (the Gateway API project's CRDs), serves them, and its leader writes their status in
the spec's shape through `/status` -- a route's `parents[]` conditions (Accepted, ResolvedRefs
with the spec's reasons), a Gateway's conditions and attached routes per listener -- once, with
no write storm."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness.kubeapi.server import KubeAPIServer
from harness.kubecp import add_service_with_pods, install_crds, kube_control_plane, namespace, until
from shoal.api.gatewayapi import GATEWAY_KIND
from shoal.api.kinds import GATEWAY_API_KIND_SPECS
from shoal.kube.manifests_crds import crd

GW = "gateway.networking.k8s.io/v1"


def _seed(server: KubeAPIServer) -> None:
    install_crds(server)
    crds = server.type("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    for spec in GATEWAY_API_KIND_SPECS:
        server.create(crds, crd(spec))
    server.create(None, namespace("shop"))
    add_service_with_pods(server, "web", "shop", {"v1": "10.1.0.1"})
    server.create(
        None,
        {
            "apiVersion": GW,
            "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": "shop"},
            "spec": {
                "gatewayClassName": "istio",
                "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}],
            },
        },
    )
    for name, backend in (("good", "web"), ("bad", "gone")):
        server.create(
            None,
            {
                "apiVersion": GW,
                "kind": "HTTPRoute",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {
                    "parentRefs": [{"name": "edge"}],
                    "rules": [{"backendRefs": [{"name": backend, "port": 9080}]}],
                },
            },
        )


def _conditions(server: KubeAPIServer, name: str) -> dict[str, tuple[str, str]]:
    obj = server.get(GW, "HTTPRoute", name, "shop") or {}
    parents = (obj.get("status") or {}).get("parents") or [{}]
    return {c["type"]: (c["status"], c["reason"]) for c in parents[0].get("conditions", [])}


def _gateway(server: KubeAPIServer) -> dict[str, Any]:
    return (server.get(GW, "Gateway", "edge", "shop") or {}).get("status") or {}


async def test_the_leader_writes_gateway_api_status_in_the_specs_shape(tmp_path: Path) -> None:
    server = await KubeAPIServer().start()
    try:
        _seed(server)
        async with kube_control_plane(server, tmp_path) as cp:
            assert cp.kube is not None
            await until(lambda: bool(_conditions(server, "good")) and bool(_gateway(server)))
            assert _conditions(server, "good") == {
                "Accepted": ("True", "Accepted"),
                "ResolvedRefs": ("True", "ResolvedRefs"),
            }
            route = server.get(GW, "HTTPRoute", "good", "shop")
            assert route is not None
            (parent,) = route["status"]["parents"]
            assert parent["controllerName"] == "shoal.dev/gateway-controller"
            assert parent["parentRef"]["name"] == "edge"
            assert all(c["lastTransitionTime"] for c in parent["conditions"])
            await until(lambda: bool(_conditions(server, "bad")))
            assert _conditions(server, "bad")["ResolvedRefs"] == ("False", "BackendNotFound")

            gateway = _gateway(server)
            assert gateway["conditions"][0]["type"] == "Accepted"
            assert [(lst["name"], lst["attachedRoutes"]) for lst in gateway["listeners"]] == [
                ("http", 1)
            ]
            # the good route is served: the snapshot holds its VirtualService
            assert cp.snapshot is not None
            assert any(vs.meta.name.endswith(".gateway-api") for vs in cp.snapshot.virtual_services)
            assert cp.kube.source.resource_type(GATEWAY_KIND) is not None

            # status writes are no config change: nothing is written again
            await until(lambda: cp.kube is not None and cp.kube.status.writes == 3)
            await asyncio.sleep(1.0)
            assert cp.kube.status.writes == 3
    finally:
        await server.stop()
