"""DestinationRule (networking.istio.io): subsets of a service and the traffic policy
(load balancing, connection pools, outlier detection, retry budget, TLS) that applies to them.

The traffic-policy models live in trafficpolicy.py (`tls` in clienttls.py). `workloadSelector`
(a rule for some sidecars only) is not implemented yet and are reported as such by load.py
(see unimplemented.py).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from shoal.api.base import ApiModel, DnsLabel, ExportEverywhere, Host, field_error
from shoal.api.trafficpolicy import LoadBalancerSettings, TrafficPolicy, effective_policy

__all__ = ["DestinationRuleSpec", "LoadBalancerSettings", "Subset", "TrafficPolicy"]


class Subset(ApiModel):
    """A named group of a service's endpoints, selected by labels."""

    name: DnsLabel  # Istio: a DNS-1123 label; it becomes part of cluster names
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(ApiModel):
    host: Host
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    export_to: ExportEverywhere = Field(default_factory=list)

    @field_validator("subsets")
    @classmethod
    def _names_unique(cls, value: list[Subset]) -> list[Subset]:
        seen: dict[str, int] = {}
        for i, subset in enumerate(value):
            if subset.name in seen:
                raise field_error(
                    f"{i}.name",
                    f"subset {subset.name!r} is already defined by subsets[{seen[subset.name]}]",
                )
            seen[subset.name] = i
        return value

    def subset_names(self) -> list[str]:
        return [s.name for s in self.subsets]

    def tls_files(self) -> tuple[str, ...]:
        """Files named by every `tls` of this rule, for the control plane to read."""
        found = list(self.traffic_policy.tls_files() if self.traffic_policy else ())
        for s in self.subsets:
            found += s.traffic_policy.tls_files() if s.traffic_policy else ()
        return tuple(found)

    def policy_for(self, port: int | None, subset: str = "") -> TrafficPolicy | None:
        """The traffic policy of the cluster for (`port`, `subset`), levels merged as Istio does."""
        sub = next((s for s in self.subsets if s.name == subset), None) if subset else None
        return effective_policy(self.traffic_policy, sub.traffic_policy if sub else None, port)
