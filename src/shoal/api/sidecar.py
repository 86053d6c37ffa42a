"""Sidecar (networking.istio.io): per-workload tuning of a sidecar's outbound behaviour.

shoal implements `workloadSelector` and `outboundTrafficPolicy.mode`: ALLOW_ANY (Istio's
default) forwards a request for a host outside the registry to that host, REGISTRY_ONLY
answers it with 502 like Istio's BlackHoleCluster. `egress` and `ingress` (scoping which
services a sidecar sees) are valid Istio but not implemented yet: load.py reports them so
(see unimplemented.py) instead of silently ignoring them.
"""

from __future__ import annotations

from typing import Literal

from shoal.api.base import ApiModel
from shoal.api.serviceentry import WorkloadSelector


class OutboundTrafficPolicy(ApiModel):
    """What a sidecar does with a request for a host the registry does not know."""

    mode: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"


class SidecarSpec(ApiModel):
    workload_selector: WorkloadSelector | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
