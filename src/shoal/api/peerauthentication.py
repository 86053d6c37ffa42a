"""PeerAuthentication (security.istio.io): whether a workload's sidecar accepts plaintext,
mutual TLS, or both, at mesh, namespace and workload scope.

Field names and meaning are Istio's (`security/v1beta1/peer_authentication.proto`). Which
policy applies to a workload, and how UNSET inherits, is generate/peerauth.py.
`portLevelMtls` keys are workload ports (the port the app listens on, `APP_PORT` for
sidecars without traffic capture) and, as in Istio, need a `selector`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, field_error

MtlsMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class WorkloadLabelSelector(ApiModel):
    """Istio's `type.v1beta1.WorkloadSelector`: workloads whose labels include these."""

    match_labels: dict[str, str] = Field(default_factory=dict)


class MutualTls(ApiModel):
    mode: MtlsMode = "UNSET"


class PeerAuthenticationSpec(ApiModel):
    selector: WorkloadLabelSelector | None = None
    mtls: MutualTls | None = None
    port_level_mtls: dict[Annotated[int, Field(ge=1, le=65535)], MutualTls] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _ports_need_selector(self) -> Self:
        # Istio's validation: "portLevelMtls requires selector"
        if self.port_level_mtls and (self.selector is None or not self.selector.match_labels):
            raise field_error("portLevelMtls", "portLevelMtls needs a selector with matchLabels")
        return self
