"""The Kubernetes resource types shoal watches: where each lives in the API (group, version,
plural) and whether it is namespaced.

Core inputs are fixed (Namespaces, Services, EndpointSlices, Pods, ServiceAccounts); the
custom kinds are every kind the file source accepts (`shoal.api.kinds`), served by the CRDs
`shoal install` registers, under the plural `crd_plural` gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.api.kinds import GATEWAY_API_KIND_SPECS, KIND_SPECS


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    # the kind its objects are filed under when `kind` alone is taken (Gateway API's Gateway
    # beside Istio's; api/kinds.py KindSpec.name): informers, sources and status keys
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.kind

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def list_path(self) -> str:
        """Every object of this type, in all namespaces."""
        return f"{self.prefix}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.prefix}/namespaces/{namespace}/{self.plural}/{name}"
        return f"{self.prefix}/{self.plural}/{name}"


def crd_plural(kind: str) -> str:
    """Kubernetes' lower-case plural of a kind: VirtualService -> virtualservices,
    ServiceEntry -> serviceentries, AuthorizationPolicy -> authorizationpolicies."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = ResourceType("", "v1", "services", "Service")
ENDPOINT_SLICES = ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
PODS = ResourceType("", "v1", "pods", "Pod")
SERVICE_ACCOUNTS = ResourceType("", "v1", "serviceaccounts", "ServiceAccount")

CORE_TYPES = (NAMESPACES, SERVICES, ENDPOINT_SLICES, PODS, SERVICE_ACCOUNTS)


def config_types() -> tuple[ResourceType, ...]:
    """One type per config kind, at the first (preferred) version the file source accepts."""
    return tuple(
        ResourceType(spec.group, spec.versions[0], crd_plural(spec.kind), spec.kind, name=spec.name)
        for spec in (*KIND_SPECS.values(), *GATEWAY_API_KIND_SPECS)
    )
