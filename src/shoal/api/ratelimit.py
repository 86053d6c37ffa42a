"""`LocalRateLimit` (shoal.dev/v1alpha1): a token bucket in front of selected workloads.

Istio has no first-class kind for this (it uses an EnvoyFilter); shoal turns it into Envoy's
`envoy.filters.http.local_ratelimit` on the inbound listener of every sidecar in the same
namespace whose labels match `workloadSelector`. Requests over the bucket get 429 with the
header `x-local-rate-limit: true`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from shoal.api.base import ApiModel
from shoal.api.duration import Duration
from shoal.api.serviceentry import WorkloadSelector


class LocalRateLimitSpec(ApiModel):
    workload_selector: WorkloadSelector | None = None
    # the bucket holds at most max_tokens; every fill_interval adds tokens_per_fill
    # both are uint32 in Envoy's TokenBucket
    max_tokens: Annotated[int, Field(ge=1, le=2**32 - 1, strict=True)]
    tokens_per_fill: Annotated[int, Field(ge=1, le=2**32 - 1, strict=True)] = 1
    fill_interval: Duration

    @field_validator("fill_interval")
    @classmethod
    def _at_least_50ms(cls, value: float) -> float:
        # Envoy refuses a local rate limit bucket refilled more often than every 50 ms.
        if value < 0.05:
            raise ValueError("fillInterval must be at least 50ms")
        return value
