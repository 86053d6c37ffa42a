"""The WorkloadEntry an auto-registering proxy becomes, and who may join a group."""

from __future__ import annotations

from shoal.api import parse_file
from shoal.api.load import parse_object
from shoal.api.resource import Resource
from shoal.controlplane.autoregister import check_group, entry_document, entry_name
from shoal.model import Proxy, parse_proxy

GROUP = """\
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: reviews, namespace: shop}
spec:
  metadata:
    labels: {app: reviews, tier: web}
    annotations: {team: books}
  template:
    ports: {http: 9080, grpc: 9090}
    labels: {tier: template, version: v1}
    serviceAccount: reviews
    weight: 3
"""


def _group(text: str = GROUP) -> Resource:
    (res,), errors = parse_file("g.yaml", text)
    assert errors == []
    return res


def _proxy(**meta: object) -> Proxy:
    base: dict[str, object] = {
        "NAMESPACE": "shop",
        "SERVICE_ACCOUNT": "reviews",
        "AUTO_REGISTER_GROUP": "reviews",
        "INTERCEPTION_MODE": "REDIRECT",
        "LABELS": {"version": "v2"},
    }
    return parse_proxy("sidecar~10.1.2.3~vm1.shop~shop.svc.cluster.local", {**base, **meta})


def test_the_entry_takes_labels_node_over_group_over_template_and_the_proxys_address() -> None:
    proxy = _proxy(SECURE="true")
    assert proxy.auto_register_group == "reviews"
    doc = entry_document(_group(), proxy, "10.1.2.3")
    assert doc["metadata"] == {
        "name": "reviews-10-1-2-3",
        "namespace": "shop",
        "labels": {"app": "reviews", "tier": "web"},
        "annotations": {"team": "books", "istio.io/autoRegistrationGroup": "reviews"},
    }
    spec = doc["spec"]
    assert spec == {
        "address": "10.1.2.3",
        "labels": {
            "app": "reviews",
            "tier": "web",
            "version": "v2",
            "security.istio.io/tlsMode": "istio",
        },
        "serviceAccount": "reviews",
        "ports": {"http": 9080, "grpc": 9090},
        "weight": 3,
    }
    # and it is a WorkloadEntry the config store accepts as it is
    result = parse_object("autoregister:WorkloadEntry/shop/reviews-10-1-2-3", doc)
    assert result.errors == () and result.resource is not None
    assert result.resource.kind == "WorkloadEntry"


def test_without_capture_every_port_is_the_sidecars_inbound_port() -> None:
    proxy = _proxy(INTERCEPTION_MODE="NONE", OUTBOUND_PORT="15101", INBOUND_PORT="15106")
    doc = entry_document(_group(), proxy, "10.1.2.3")
    assert doc["spec"]["ports"] == {"http": 15106, "grpc": 15106}
    assert "security.istio.io/tlsMode" not in doc["spec"]["labels"]


def test_only_the_groups_service_account_may_join() -> None:
    group = _group()
    assert check_group(group, _proxy(), "reviews") is None
    why = check_group(group, _proxy(SERVICE_ACCOUNT="ratings"), "reviews")
    assert why is not None and "service account reviews" in why and "ratings" in why
    missing = check_group(None, _proxy(), "nope")
    assert missing == "WorkloadGroup shop/nope does not exist"


def test_entry_names_are_dns_names() -> None:
    assert entry_name("reviews", "10.0.0.1") == "reviews-10-0-0-1"
    assert entry_name("reviews", "fd00::1") == "reviews-fd00--1"
