"""Kubernetes Service / EndpointSlice / Pod -> mesh model (shoal.kube.translate*)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.kube.translate import mesh_service, port_protocol, service_from_slices
from shoal.kube.translate_endpoints import health, merge_slices, slice_endpoints
from shoal.kube.translate_pod import locality, workload


def _service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"], **spec},
    }


def _pod(name: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"serviceAccountName": "bookinfo-reviews", "nodeName": "node-a"},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _slice(*endpoints: dict[str, Any], name: str = "reviews-abc") -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "reviews"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
        "endpoints": list(endpoints),
    }


def _ep(ip: str, pod: str | None, **conditions: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip], "conditions": conditions, "zone": "z1"}
    if pod is not None:
        out["targetRef"] = {"kind": "Pod", "namespace": "shop", "name": pod}
    return out


@pytest.mark.parametrize(
    ("name", "kube", "app", "expected"),
    [
        ("http", "TCP", None, "HTTP"),
        ("http-web", "TCP", None, "HTTP"),
        ("HTTP2-api", "TCP", None, "HTTP2"),
        ("grpc", "TCP", None, "GRPC"),
        ("grpc-web", "TCP", None, "GRPC-WEB"),
        ("grpc-web-ui", "TCP", None, "GRPC-WEB"),
        ("grpc-api", "TCP", None, "GRPC"),
        ("https-admin", "TCP", None, "HTTPS"),
        ("tls", "TCP", None, "TLS"),
        ("tcp-db", "TCP", None, "TCP"),
        ("mongo", "TCP", None, "MONGO"),
        ("redis-cache", "TCP", None, "REDIS"),
        ("mysql", "TCP", None, "MYSQL"),
        ("http_proxy", "TCP", None, "HTTP"),
        ("web", "TCP", None, "TCP"),  # Istio would sniff; shoal proxies it as TCP
        ("", "TCP", None, "TCP"),
        ("http", "UDP", None, "UDP"),  # the Kubernetes protocol wins for UDP
        ("web", "TCP", "http", "HTTP"),  # appProtocol beats the name
        ("http", "TCP", "grpc", "GRPC"),
        ("web", "TCP", "kubernetes.io/h2c", "HTTP2"),
        ("web", "TCP", "kubernetes.io/ws", "HTTP"),
        ("web", "TCP", "kubernetes.io/wss", "HTTPS"),
        ("http", "TCP", "example.com/custom", "TCP"),  # an unknown appProtocol beats the name
    ],
)
def test_port_protocol_follows_istio(name: str, kube: str, app: str | None, expected: str) -> None:
    assert port_protocol(name, kube, app) == expected


def test_service_naming_ports_and_target_ports() -> None:
    svc = mesh_service(
        _service(
            ports=[
                {"name": "http", "port": 9080, "targetPort": 9080, "protocol": "TCP"},
                {"name": "grpc-api", "port": 9090, "targetPort": 19090},
                {"name": "metrics", "port": 9100, "targetPort": "metrics", "appProtocol": "http"},
                {"name": "sctp", "port": 7000, "protocol": "SCTP"},
            ]
        )
    )
    assert svc.hostname == "reviews.shop.svc.cluster.local"
    assert svc.namespace == "shop"
    assert svc.addresses == ("10.96.0.12",)
    assert svc.resolution == "STATIC"
    assert svc.location == "MESH_INTERNAL"
    assert [(p.name, p.number, p.protocol, p.target_port) for p in svc.ports] == [
        ("http", 9080, "HTTP", None),
        ("grpc-api", 9090, "GRPC", 19090),
        # a named targetPort is resolved per endpoint, from the slice's ports
        ("metrics", 9100, "HTTP", None),
    ]


def test_headless_external_name_and_export_to() -> None:
    headless = mesh_service(_service(clusterIP="None", clusterIPs=["None"]))
    assert headless.resolution == "NONE"
    assert headless.addresses == ()

    ext = mesh_service(
        {
            "kind": "Service",
            "metadata": {
                "name": "db",
                "namespace": "shop",
                "annotations": {"networking.istio.io/exportTo": "., istio-system"},
            },
            "spec": {
                "type": "ExternalName",
                "externalName": "db.example.com.",
                "ports": [{"name": "tcp", "port": 5432}],
            },
        }
    )
    assert ext.hostname == "db.shop.svc.cluster.local"
    assert (ext.resolution, ext.location) == ("DNS", "MESH_EXTERNAL")
    assert [e.address for e in ext.endpoints] == ["db.example.com"]
    assert ext.export_to == (".", "istio-system")


def test_pod_workload() -> None:
    pod = _pod("reviews-v1-1", "10.1.0.5", app="reviews", version="v1")
    pod["metadata"]["labels"]["security.istio.io/tlsMode"] = "istio"
    w = workload(pod)
    assert (w.name, w.namespace, w.ip, w.ips) == ("reviews-v1-1", "shop", "10.1.0.5", ("10.1.0.5",))
    assert w.service_account == "bookinfo-reviews"
    assert w.labels["version"] == "v1"
    assert w.tls_mode == "istio"
    assert w.ready and not w.terminating and not w.host_network
    assert w.node_name == "node-a"

    bare = workload({"metadata": {"name": "p"}, "spec": {}, "status": {}})
    assert (bare.namespace, bare.service_account, bare.ip, bare.ready) == (
        "default",
        "default",
        "",
        False,
    )
    assert bare.tls_mode == "disabled"


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({}, "HEALTHY"),  # unset ready means ready
        ({"ready": True}, "HEALTHY"),
        ({"ready": True, "terminating": False}, "HEALTHY"),
        ({"ready": False}, "UNHEALTHY"),
        ({"ready": False, "serving": False, "terminating": False}, "UNHEALTHY"),
        ({"ready": False, "serving": True, "terminating": True}, None),  # terminating: left out
        ({"ready": False, "serving": False, "terminating": True}, None),
    ],
)
def test_endpoint_health(conditions: dict[str, bool], expected: str | None) -> None:
    assert health(conditions) == expected


def test_slice_endpoints_take_pod_identity_readiness_and_locality() -> None:
    pods = {
        ("shop", "r1"): workload(_pod("r1", "10.1.0.5", app="reviews", version="v1")),
        ("shop", "r2"): workload(_pod("r2", "10.1.0.6", app="reviews", version="v2")),
    }
    part = slice_endpoints(
        _slice(
            _ep("10.1.0.5", "r1", ready=True),
            _ep("10.1.0.6", "r2", ready=False),
            _ep("10.1.0.7", "r3", ready=True),  # pod not known yet
            _ep("10.1.0.8", "r4", ready=False, terminating=True),
            _ep("192.168.0.9", None),  # no pod behind it (a VM)
        ),
        pods,
        node_labels={"node-a": {"topology.kubernetes.io/region": "eu-west"}},
    )
    assert (part.namespace, part.service) == ("shop", "reviews")
    assert part.missing == (("shop", "r3"),)
    by_ip = {e.address: e for e in part.endpoints}
    assert sorted(by_ip) == ["10.1.0.5", "10.1.0.6", "192.168.0.9"]
    r1 = by_ip["10.1.0.5"]
    assert r1.healthy and r1.labels["version"] == "v1"
    assert r1.service_account == "bookinfo-reviews"
    assert dict(r1.ports) == {"http": 9080}
    assert r1.locality == "eu-west/z1"
    assert not by_ip["10.1.0.6"].healthy
    vm = by_ip["192.168.0.9"]
    assert vm.healthy and dict(vm.labels) == {} and vm.service_account == ""
    assert vm.locality == "/z1"


def test_locality_rules() -> None:
    assert locality({"istio-locality": "us.east.rack1"}, "z9") == "us/east/rack1"
    assert locality({}, "z1") == "/z1"
    assert locality({}, "", {"topology.kubernetes.io/region": "r"}) == "r"
    assert locality({}, "") == ""


def test_fqdn_slices_are_skipped() -> None:
    fq = _slice(_ep("db.example.com", None))
    fq["addressType"] = "FQDN"
    assert slice_endpoints(fq, {}).endpoints == ()


def test_service_from_slices_merges_and_filters_slices() -> None:
    pods = {("shop", "r1"): workload(_pod("r1", "10.1.0.5", app="reviews"))}
    svc_obj = _service(ports=[{"name": "http", "port": 9080, "targetPort": "http"}])
    moving_old = _slice(_ep("10.1.0.5", "r1", ready=False), name="a")
    moving_new = _slice(_ep("10.1.0.5", "r1", ready=True), name="b")
    other = _slice(_ep("10.9.9.9", None), name="c")
    other["metadata"]["labels"]["kubernetes.io/service-name"] = "ratings"
    svc = service_from_slices(svc_obj, [moving_old, moving_new, other], pods)
    assert [(e.address, e.healthy) for e in svc.endpoints] == [("10.1.0.5", True)]
    (port,) = svc.ports
    assert svc.endpoints[0].port_for(port) == 9080
    assert merge_slices([]) == ()
