"""The control plane on the Kubernetes source, against the fake API server over real HTTP:
Services and EndpointSlices become mesh services, slice readiness decides endpoints, custom
objects go through the file source's validation and keep their last good version, invalid
ones are reported in /debug/config and as an Event, and an API server that goes away leaves
the mesh on its last config."""

from __future__ import annotations

import copy
from pathlib import Path

from harness.kubeapi.server import KubeAPIServer
from harness.kubecp import add_service_with_pods, install_crds, kube_control_plane, namespace, until
from shoal.controlplane.app import ControlPlane

REVIEWS = "reviews.shop.svc.cluster.local"

VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {
        "hosts": ["reviews"],
        "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}],
    },
}
DR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {
        "host": "reviews",
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
    },
}


def _endpoints(cp: ControlPlane, host: str) -> list[tuple[str, bool]]:
    snap = cp.snapshot
    svc = snap.services.get(host) if snap is not None else None
    return [] if svc is None else [(e.address, e.healthy) for e in svc.endpoints]


def _vs_subset(cp: ControlPlane) -> str:
    snap = cp.snapshot
    assert snap is not None
    (vs,) = snap.vs_by_host[REVIEWS]
    return str(vs.spec.model_dump()["http"][0]["route"][0]["destination"]["subset"] or "")


async def test_services_and_slices_become_mesh_services_and_readiness_decides(
    tmp_path: Path,
) -> None:
    server = await KubeAPIServer().start()
    try:
        install_crds(server)
        server.create(None, namespace("shop"))
        add_service_with_pods(server, "reviews", "shop", {"v1": "10.1.0.1", "v2": "10.1.0.2"})
        async with kube_control_plane(server, tmp_path) as cp:
            # synced before the first build: the mesh is complete from the first snapshot
            assert sorted(_endpoints(cp, REVIEWS)) == [("10.1.0.1", True), ("10.1.0.2", True)]
            svc = cp.snapshot.services[REVIEWS] if cp.snapshot else None
            assert svc is not None and [p.protocol for p in svc.ports] == ["HTTP"]
            assert {e.service_account for e in svc.endpoints} == {"bookinfo-reviews"}
            assert {e.tls_mode for e in svc.endpoints} == {"istio"}

            es = server.type("discovery.k8s.io/v1", "EndpointSlice")
            sl = copy.deepcopy(
                server.get("discovery.k8s.io/v1", "EndpointSlice", "reviews-slice", "shop")
            )
            assert sl is not None
            sl["endpoints"][1]["conditions"]["ready"] = False
            server.store.update(es, sl, None)
            await until(lambda: ("10.1.0.2", False) in _endpoints(cp, REVIEWS))

            server.store.remove(es, "shop", "reviews-slice")
            await until(lambda: _endpoints(cp, REVIEWS) == [])
            server.store.remove(server.type("v1", "Service"), "shop", "reviews")
            await until(lambda: cp.snapshot is not None and REVIEWS not in cp.snapshot.services)
    finally:
        await server.stop()


async def test_an_invalid_custom_object_keeps_its_last_good_version_and_is_reported(
    tmp_path: Path,
) -> None:
    server = await KubeAPIServer().start()
    try:
        install_crds(server)
        server.create(None, namespace("shop"))
        add_service_with_pods(server, "reviews", "shop", {"v1": "10.1.0.1", "v2": "10.1.0.2"})
        server.create(None, DR)
        server.create(None, VS)
        async with kube_control_plane(server, tmp_path) as cp:
            assert _vs_subset(cp) == "v1"
            assert cp.errors == ()
            await until(lambda: cp.kube is not None and cp.kube.leader.leading)

            # applied past the validating webhook: a weight that is not a number
            rt = server.type("networking.istio.io/v1", "VirtualService")
            bad = copy.deepcopy(
                server.get("networking.istio.io/v1", "VirtualService", "reviews", "shop")
            )
            assert bad is not None
            bad["spec"]["http"][0]["route"][0]["weight"] = "lots"
            server.store.update(rt, bad, None)
            await until(lambda: bool(cp.errors))
            (err,) = cp.errors
            assert err.file == "kubernetes:VirtualService/shop/reviews"
            assert (err.kind, err.name) == ("VirtualService", "shop/reviews")
            assert err.field == "spec.http[0].route[0].weight"
            assert "keeping its last good version" in err.message
            assert _vs_subset(cp) == "v1"

            def events() -> list[dict[str, object]]:
                return [
                    e
                    for e in server.objects("v1", "Event", "shop")
                    if e["involvedObject"]["name"] == "reviews"  # type: ignore[index]
                ]

            await until(lambda: bool(events()))
            (event,) = events()
            assert event["reason"] == "InvalidConfig" and event["type"] == "Warning"
            assert "spec.http[0].route[0].weight" in str(event["message"])
            involved = event["involvedObject"]
            assert isinstance(involved, dict)
            assert involved["kind"] == "VirtualService"
            assert involved["uid"] == bad["metadata"]["uid"]

            # fixed: the error goes, the new version is in force
            good = copy.deepcopy(bad)
            good["spec"]["http"][0]["route"][0] = {"destination": {"host": "reviews"}}
            server.store.update(rt, good, None)
            await until(lambda: not cp.errors)
            assert _vs_subset(cp) == ""
    finally:
        await server.stop()


async def test_the_api_server_going_away_keeps_the_last_config(tmp_path: Path) -> None:
    server = await KubeAPIServer().start()
    install_crds(server)
    server.create(None, namespace("shop"))
    add_service_with_pods(server, "reviews", "shop", {"v1": "10.1.0.1"})
    async with kube_control_plane(server, tmp_path) as cp:
        assert cp.snapshot is not None
        version = cp.snapshot.version
        await server.stop()
        assert cp.kube is not None
        informers = cp.kube.source.informers
        await until(lambda: all(i.stats.errors > 0 for i in informers.values()), within=15)
        assert cp.snapshot.version == version
        assert _endpoints(cp, REVIEWS) == [("10.1.0.1", True)]


async def test_nothing_is_built_before_every_informer_has_listed(tmp_path: Path) -> None:
    """Informer events during the first LISTs build nothing: the first generation is the
    whole mesh (a VirtualService listed late is no error of a Service not listed yet)."""
    server = await KubeAPIServer().start()
    try:
        install_crds(server)
        server.create(None, namespace("shop"))
        add_service_with_pods(server, "reviews", "shop", {"v1": "10.1.0.1", "v2": "10.1.0.2"})
        server.create(None, DR)
        server.create(None, VS)
        # the VirtualService list answers last, long after the debounce window (10 ms)
        server.delay_requests(1.0, count=1, method="GET", path="virtualservices", watch=False)
        async with kube_control_plane(server, tmp_path) as cp:
            assert cp.snapshot is not None
            assert cp.snapshot.version.endswith(".1"), cp.snapshot.version
            assert _vs_subset(cp) == "v1"
            assert cp.errors == ()
    finally:
        await server.stop()
