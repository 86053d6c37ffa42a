"""Sidecar (networking.istio.io): per-workload tuning of a sidecar's outbound behaviour.

shoal implements `workloadSelector`, `outboundTrafficPolicy.mode` — ALLOW_ANY (Istio's
default) forwards a request for a host outside the registry to that host, REGISTRY_ONLY
answers it with 502 like Istio's BlackHoleCluster — and `egress[].hosts`, which scopes the
services a sidecar receives config for (`namespace/host`, `*` and `.` as in Istio). The other
egress fields (`port`, `bind`, `captureMode`) and `ingress` are valid Istio but not
implemented yet: load.py reports them so (see unimplemented.py) instead of ignoring them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from shoal.api.base import ApiModel
from shoal.api.serviceentry import WorkloadSelector


class OutboundTrafficPolicy(ApiModel):
    """What a sidecar does with a request for a host the registry does not know."""

    mode: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"


class EgressListener(ApiModel):
    """Which services (by `namespace/dnsName`) the sidecar can reach."""

    hosts: Annotated[list[str], Field(min_length=1)]

    @field_validator("hosts")
    @classmethod
    def _namespaced(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            ns, sep, name = host.partition("/")
            if not sep or not ns or not name:
                raise ValueError(
                    f"egress host {host!r} must be NAMESPACE/DNSNAME, "
                    "e.g. './*' or 'istio-system/*'"
                )
        return hosts


class SidecarSpec(ApiModel):
    workload_selector: WorkloadSelector | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    egress: list[EgressListener] = Field(default_factory=list)
