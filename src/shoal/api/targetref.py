"""`targetRef` / `targetRefs` of Istio's security policies: a policy bound to a gateway by name.

Istio's `type.v1beta1.PolicyTargetReference`. shoal implements the reference Istio's task
pages use: `kind: Gateway, group: gateway.networking.k8s.io` -- the gateway proxies run for a
Gateway API Gateway of that name. As Istio does, those proxies are the workloads labelled
`gateway.networking.k8s.io/gateway-name: NAME`, so a reference works like a `selector` on
that label, in the reference's `namespace` (default: the policy's own; also in the root
namespace: a reference is never mesh-wide). Waypoint targets (`Service`, `ServiceEntry`,
`GatewayClass`) belong to ambient mode, which shoal does not run: not implemented yet.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, field_error
from shoal.api.gatewayapi import GATEWAY_NAME_LABEL

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# the label Istio puts on the proxies it deploys for a Gateway API Gateway
_WAYPOINT_KINDS = ("Service", "ServiceEntry", "GatewayClass")


class PolicyTargetReference(ApiModel):
    group: str = ""
    kind: str
    name: str
    namespace: str = ""

    @model_validator(mode="after")
    def _supported(self) -> Self:
        if self.kind == "Gateway" and self.group == GATEWAY_API_GROUP:
            return self
        if self.kind in _WAYPOINT_KINDS or self.kind == "Gateway":
            raise ValueError(
                f"a targetRef to {self.kind} (group {self.group or 'core'!r}) is not "
                f"implemented yet: shoal binds policies to Gateway API Gateways (group "
                f"{GATEWAY_API_GROUP}) only; use a selector for sidecars"
            )
        raise ValueError(
            f"kind {self.kind!r} cannot be a policy target (Istio's are Gateway of "
            f"{GATEWAY_API_GROUP}, Service, ServiceEntry, GatewayClass)"
        )

    def labels(self) -> dict[str, str]:
        """The workload labels of the proxies this reference names."""
        return {GATEWAY_NAME_LABEL: self.name}


class TargetedPolicy(ApiModel):
    """The `selector` / `targetRef` / `targetRefs` choice shared by the policy kinds."""

    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way_to_choose(self) -> Self:
        if self.target_ref is not None and self.target_refs:
            raise field_error("targetRefs", "only one of targetRef and targetRefs may be set")
        if self.targets() and getattr(self, "selector", None) is not None:
            raise field_error("selector", "only one of selector and targetRef(s) may be set")
        return self

    def targets(self) -> list[PolicyTargetReference]:
        return [self.target_ref] if self.target_ref is not None else list(self.target_refs)
