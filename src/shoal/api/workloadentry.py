"""WorkloadEntry (networking.istio.io): one workload outside Kubernetes, selected into
services by a ServiceEntry's `workloadSelector`.

Its spec is the same message as a ServiceEntry endpoint, as in Istio.
"""

from __future__ import annotations

from shoal.api.serviceentry import WorkloadEntrySpec

__all__ = ["WorkloadEntrySpec"]
