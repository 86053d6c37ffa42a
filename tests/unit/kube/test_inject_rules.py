"""Istio's injectRequired order (shoal.kube.inject_rules)."""

from __future__ import annotations

import pytest

from shoal.kube.inject_rules import InjectionPolicy, injection_required
from unit.kube.pods import deployment_pod

INJECT = "sidecar.istio.io/inject"


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        ({}, None, True),  # falls through to the policy (enabled)
        ({INJECT: "true"}, None, True),
        ({INJECT: "false"}, None, False),
        ({}, {INJECT: "false"}, False),
        ({}, {INJECT: "yes"}, True),
        ({}, {INJECT: "On"}, True),
        ({INJECT: "true"}, {INJECT: "false"}, True),  # the label beats the annotation
        ({INJECT: "false"}, {INJECT: "true"}, False),
        ({}, {INJECT: "maybe"}, False),  # any other non-empty value decides "no"
        ({}, {INJECT: ""}, True),
    ],
)
def test_label_and_annotation(
    labels: dict[str, str], annotations: dict[str, str] | None, expected: bool
) -> None:
    wanted, why = injection_required(deployment_pod(labels=labels, annotations=annotations))
    assert wanted is expected, why


def test_host_network_and_system_namespaces_never() -> None:
    forced = {INJECT: "true"}
    assert injection_required(deployment_pod(labels=forced, hostNetwork=True)) == (
        False,
        "hostNetwork pod",
    )
    system = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage", "shoal-system")
    for ns in system:
        wanted, why = injection_required(deployment_pod(namespace=ns, labels=forced))
        assert not wanted and ns in why


def test_selectors_then_policy() -> None:
    policy = InjectionPolicy(
        policy="disabled",
        never_inject_selector=[{"matchLabels": {"app": "reviews"}}],
        always_inject_selector=[
            {"matchExpressions": [{"key": "version", "operator": "In", "values": ["v1"]}]}
        ],
    )
    # never wins over always when both match
    assert injection_required(deployment_pod(), policy)[0] is False
    other = deployment_pod(labels={"app": "ratings"})
    assert injection_required(other, policy) == (True, "pod labels match alwaysInjectSelector")
    neither = deployment_pod(labels={"app": "ratings", "version": "v2"})
    assert injection_required(neither, policy) == (False, "injection policy disabled")
    # an explicit label decides before any selector
    explicit = deployment_pod(labels={INJECT: "true"})
    assert injection_required(explicit, policy)[0] is True
