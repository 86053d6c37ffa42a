"""DestinationRule (networking.istio.io): subsets of a service and how traffic to it is
balanced.

Only load-balancer selection is implemented; Istio's other traffic-policy fields are
reported as not implemented yet by load.py (see unimplemented.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shoal.api.base import ApiModel, Host, field_error
from shoal.api.serviceentry import WorkloadSelector


class LoadBalancerSettings(ApiModel):
    simple: (
        Literal[
            "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
        ]
        | None
    ) = None


class TrafficPolicy(ApiModel):
    load_balancer: LoadBalancerSettings | None = None


class Subset(ApiModel):
    """A named group of a service's endpoints, selected by labels."""

    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(ApiModel):
    host: Host
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)
    workload_selector: WorkloadSelector | None = None

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
