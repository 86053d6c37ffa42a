"""The Kubernetes registry: object events in, mesh services and changed hostnames out."""

from __future__ import annotations

from typing import Any

from shoal.kube.registry import KubeRegistry
from shoal.kube.watchcache import ObjectEvent, object_key

HOST = "reviews.shop.svc.cluster.local"


def _service() -> dict[str, Any]:
    return {
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.0.12", "ports": [{"name": "http", "port": 9080}]},
    }


def _pod(name: str, ip: str, version: str = "v1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"app": "reviews", "version": version},
        },
        "spec": {"serviceAccountName": "bookinfo-reviews"},
        "status": {"podIP": ip},
    }


def _slice(name: str, *eps: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "reviews"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 9080}],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod},
            }
            for ip, pod, ready in eps
        ],
    }


def _add(obj: dict[str, Any]) -> list[ObjectEvent]:
    return [ObjectEvent("ADDED", object_key(obj), None, obj)]


def test_a_service_takes_its_endpoints_from_its_slices_and_pods() -> None:
    reg = KubeRegistry()
    assert reg.apply("Service", _add(_service())) == {HOST}
    assert reg.services[HOST].endpoints == ()
    reg.apply("Pod", _add(_pod("r1", "10.0.0.1")))
    assert reg.apply("EndpointSlice", _add(_slice("s1", ("10.0.0.1", "r1", True)))) == {HOST}
    (ep,) = reg.services[HOST].endpoints
    assert (ep.address, ep.service_account, ep.labels["version"]) == (
        "10.0.0.1",
        "bookinfo-reviews",
        "v1",
    )


def test_an_endpoint_waits_for_its_pod_then_appears() -> None:
    reg = KubeRegistry()
    reg.apply("Service", _add(_service()))
    reg.apply("EndpointSlice", _add(_slice("s1", ("10.0.0.1", "r1", True))))
    assert reg.services[HOST].endpoints == ()
    assert reg.apply("Pod", _add(_pod("r1", "10.0.0.1"))) == {HOST}
    assert len(reg.services[HOST].endpoints) == 1


def test_pod_status_churn_changes_nothing_but_a_label_change_does() -> None:
    reg = KubeRegistry()
    reg.apply("Service", _add(_service()))
    pod = _pod("r1", "10.0.0.1")
    reg.apply("Pod", _add(pod))
    reg.apply("EndpointSlice", _add(_slice("s1", ("10.0.0.1", "r1", True))))
    held = reg.services[HOST]
    churned = {**pod, "status": {"podIP": "10.0.0.1", "phase": "Running"}}
    assert reg.apply("Pod", [ObjectEvent("MODIFIED", ("shop", "r1"), pod, churned)]) == set()
    relabelled = _pod("r1", "10.0.0.1", version="v2")
    assert reg.apply("Pod", [ObjectEvent("MODIFIED", ("shop", "r1"), pod, relabelled)]) == {HOST}
    assert reg.services[HOST] is not held
    assert reg.services[HOST].endpoints[0].labels["version"] == "v2"


def test_slice_readiness_decides_and_an_unchanged_rebuild_keeps_the_object() -> None:
    reg = KubeRegistry()
    reg.apply("Service", _add(_service()))
    reg.apply("Pod", _add(_pod("r1", "10.0.0.1")))
    reg.apply("EndpointSlice", _add(_slice("s1", ("10.0.0.1", "r1", True))))
    held = reg.services[HOST]
    again = _slice("s1", ("10.0.0.1", "r1", True))
    assert (
        reg.apply("EndpointSlice", [ObjectEvent("MODIFIED", ("shop", "s1"), again, again)]) == set()
    )
    assert reg.services[HOST] is held
    down = _slice("s1", ("10.0.0.1", "r1", False))
    assert reg.apply("EndpointSlice", [ObjectEvent("MODIFIED", ("shop", "s1"), again, down)]) == {
        HOST
    }
    assert reg.services[HOST].endpoints[0].healthy is False


def test_deleting_the_service_or_its_slice() -> None:
    reg = KubeRegistry()
    svc, sl = _service(), _slice("s1", ("10.0.0.1", "r1", True))
    reg.apply("Service", _add(svc))
    reg.apply("Pod", _add(_pod("r1", "10.0.0.1")))
    reg.apply("EndpointSlice", _add(sl))
    assert reg.apply("EndpointSlice", [ObjectEvent("DELETED", ("shop", "s1"), sl, None)]) == {HOST}
    assert reg.services[HOST].endpoints == ()
    assert reg.apply("Service", [ObjectEvent("DELETED", ("shop", "reviews"), svc, None)]) == {HOST}
    assert HOST not in reg.services


def test_a_sidecar_inbound_port_annotation_moves_the_endpoint() -> None:
    """A pod whose sidecar runs without capture (inject.py) is reached on the sidecar's
    inbound port; the annotation alone changing is an endpoint change."""
    reg = KubeRegistry()
    reg.apply("Service", _add(_service()))
    pod = _pod("r1", "10.0.0.1")
    reg.apply("Pod", _add(pod))
    reg.apply("EndpointSlice", _add(_slice("s1", ("10.0.0.1", "r1", True))))
    assert dict(reg.services[HOST].endpoints[0].ports) == {"http": 9080}
    sidecar = {"sidecar.istio.io/interceptionMode": "NONE", "shoal.dev/inbound-port": "15006"}
    annotated = {**pod, "metadata": {**pod["metadata"], "annotations": sidecar}}
    assert reg.apply("Pod", [ObjectEvent("MODIFIED", ("shop", "r1"), pod, annotated)]) == {HOST}
    assert dict(reg.services[HOST].endpoints[0].ports) == {"http": 15006}
