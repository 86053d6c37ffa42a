"""Registry of config kinds shoal understands: which apiVersions, which spec model.

Adding a kind (security.istio.io AuthorizationPolicy, shoal.dev LocalWorkload, ...) is
one `KindSpec` entry in `_REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from shoal.api.authorizationpolicy import AuthorizationPolicySpec
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.gateway import GatewaySpec
from shoal.api.localgateway import LocalGatewaySpec
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.meshconfig import MeshConfigSpec
from shoal.api.peerauthentication import PeerAuthenticationSpec
from shoal.api.ratelimit import LocalRateLimitSpec
from shoal.api.requestauthentication import RequestAuthenticationSpec
from shoal.api.serviceentry import ServiceEntrySpec
from shoal.api.sidecar import SidecarSpec
from shoal.api.telemetry import TelemetrySpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.api.workloadentry import WorkloadEntrySpec

_ISTIO_NETWORKING = ("v1", "v1beta1", "v1alpha3")
_ISTIO_SECURITY = ("v1", "v1beta1")


@dataclass(frozen=True)
class KindSpec:
    """One kind: its API group, the versions accepted, and the model of its `spec`."""

    group: str
    versions: tuple[str, ...]
    kind: str
    spec: type[BaseModel]

    @property
    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" for v in self.versions)


_REGISTRY: tuple[KindSpec, ...] = (
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "ServiceEntry", ServiceEntrySpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "WorkloadEntry", WorkloadEntrySpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "VirtualService", VirtualServiceSpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "DestinationRule", DestinationRuleSpec),
    KindSpec("shoal.dev", ("v1alpha1",), "LocalWorkload", LocalWorkloadSpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "Sidecar", SidecarSpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "Gateway", GatewaySpec),
    KindSpec("shoal.dev", ("v1alpha1",), "LocalRateLimit", LocalRateLimitSpec),
    KindSpec("shoal.dev", ("v1alpha1",), "LocalGateway", LocalGatewaySpec),
    KindSpec("shoal.dev", ("v1alpha1",), "MeshConfig", MeshConfigSpec),
    KindSpec("security.istio.io", _ISTIO_SECURITY, "PeerAuthentication", PeerAuthenticationSpec),
    KindSpec("security.istio.io", _ISTIO_SECURITY, "AuthorizationPolicy", AuthorizationPolicySpec),
    KindSpec(
        "security.istio.io", _ISTIO_SECURITY, "RequestAuthentication", RequestAuthenticationSpec
    ),
    KindSpec("telemetry.istio.io", ("v1", "v1alpha1"), "Telemetry", TelemetrySpec),
)

KIND_SPECS: Mapping[str, KindSpec] = {k.kind: k for k in _REGISTRY}
KINDS: Mapping[str, type[BaseModel]] = {k.kind: k.spec for k in _REGISTRY}


class UnknownKindError(ValueError):
    """The apiVersion/kind pair is not one shoal accepts; the message lists what is."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def lookup(api_version: str, kind: str) -> KindSpec:
    """Return the registered kind for `apiVersion`/`kind`, or raise UnknownKindError."""
    spec = KIND_SPECS.get(kind)
    if spec is None:
        raise UnknownKindError(
            f"unknown kind {kind!r}; shoal accepts {', '.join(sorted(KIND_SPECS))}", "kind"
        )
    if api_version not in spec.api_versions:
        raise UnknownKindError(
            f"apiVersion {api_version!r} is not accepted for {kind}; "
            f"use one of {', '.join(spec.api_versions)}",
            "apiVersion",
        )
    return spec
