"""SMI `TrafficSplit` (split.smi-spec.io): the requests for a root service shared between
backend services by weight, as a VirtualService with weighted destinations does.

`spec.service` is the root service (the Kubernetes Service name clients call, in the split's
namespace); `spec.backends[]` are services of the same namespace with an integer `weight`
(SMI's weights are relative: they need not add up to 100). `spec.matches` (HTTPRouteGroup
references) needs HTTPRouteGroup, not implemented yet: refused as such.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from shoal.api.base import ApiModel, DnsLabel, field_error


class Backend(ApiModel):
    service: DnsLabel
    weight: Annotated[int, Field(ge=0, strict=True)]


class TrafficSplitSpec(ApiModel):
    service: DnsLabel
    backends: list[Backend] = Field(min_length=1)
    matches: list[dict[str, str]] = Field(default_factory=list)

    @field_validator("matches")
    @classmethod
    def _no_matches(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        if value:
            raise ValueError(
                "matches (HTTPRouteGroup references) are not implemented yet; split all "
                "requests, or use a VirtualService with matches"
            )
        return value

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if not any(b.weight for b in self.backends):
            raise field_error("backends", "at least one backend needs a weight above 0")
        names = [b.service for b in self.backends]
        if len(set(names)) != len(names):
            raise field_error("backends", "a backend service is listed twice")
        return self

    def percentages(self) -> list[tuple[str, int]]:
        """(backend, weight in percent) adding up to exactly 100 (largest remainders get the
        rounding), backends of weight 0 left out."""
        total = sum(b.weight for b in self.backends)
        shares = [(b.service, b.weight * 100 / total) for b in self.backends if b.weight]
        out = {name: int(share) for name, share in shares}
        rest = 100 - sum(out.values())
        by_remainder = sorted(shares, key=lambda s: (-(s[1] - int(s[1])), s[0]))
        for name, _ in by_remainder[:rest]:
            out[name] += 1
        return [(name, out[name]) for name, _ in shares]
