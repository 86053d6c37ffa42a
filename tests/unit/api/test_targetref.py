"""`targetRef(s)` of AuthorizationPolicy / RequestAuthentication: what is accepted, what is
refused and where the error points (behaviour through Envoy: e2e/test_security_gateway_policy)."""

from __future__ import annotations

import pytest

from shoal.api import parse_file
from shoal.api.authorizationpolicy import AuthorizationPolicySpec


def _errors(spec: str, kind: str = "AuthorizationPolicy") -> list[tuple[str, str]]:
    _, errors = parse_file(
        "p.yaml",
        f"apiVersion: security.istio.io/v1\nkind: {kind}\n"
        f"metadata: {{name: p, namespace: foo}}\nspec: {spec}\n",
    )
    return [(e.field, e.message) for e in errors]


GW = "{kind: Gateway, group: gateway.networking.k8s.io, name: gw}"


@pytest.mark.parametrize("kind", ["AuthorizationPolicy", "RequestAuthentication"])
def test_a_gateway_api_gateway_is_accepted_in_either_form(kind: str) -> None:
    assert _errors(f"{{targetRef: {GW}}}", kind) == []
    assert _errors(f"{{targetRefs: [{GW}, {GW}]}}", kind) == []


def test_the_reference_names_the_gateway_name_label() -> None:
    spec = AuthorizationPolicySpec.model_validate({"targetRefs": [
        {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "a"},
        {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "b"},
    ]})  # fmt: skip
    assert [t.labels() for t in spec.targets()] == [
        {"gateway.networking.k8s.io/gateway-name": "a"},
        {"gateway.networking.k8s.io/gateway-name": "b"},
    ]


def test_waypoint_targets_are_not_implemented_yet_and_other_kinds_invalid() -> None:
    ((field, message),) = _errors("{targetRef: {kind: Service, group: '', name: s}}")
    assert field == "spec.targetRef" and "not implemented yet" in message
    ((field, message),) = _errors("{targetRefs: [{kind: ConfigMap, name: s}]}")
    assert field == "spec.targetRefs[0]" and "cannot be a policy target" in message


def test_selector_and_target_ref_together_are_refused() -> None:
    ((field, message),) = _errors(f"{{selector: {{matchLabels: {{app: a}}}}, targetRef: {GW}}}")
    assert field == "spec.selector" and "only one of selector" in message
    ((field, _),) = _errors(f"{{targetRef: {GW}, targetRefs: [{GW}]}}")
    assert field == "spec.targetRefs"
