"""Registry of config kinds shoal understands: which apiVersions, which spec model.

Adding a kind (security.istio.io AuthorizationPolicy, shoal.dev LocalWorkload, ...) is
one `KindSpec` entry in `_REGISTRY`. `_KUBERNETES` holds the Kubernetes kinds a config
directory may hold beside them (api/kubernetes.py); they are not CRDs, so `KIND_SPECS` (what
Kubernetes serves) leaves them out and `FILE_KIND_SPECS` has both. Kinds and API groups
shoal does not implement are refused as such by `lookup`, naming what to use instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel

from shoal.api.authorizationpolicy import AuthorizationPolicySpec
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.gateway import GatewaySpec
from shoal.api.gatewayapi import GATEWAY_KIND
from shoal.api.gatewayapi import GROUP as GATEWAY_API
from shoal.api.gatewayapi.gateway import GatewayClassSpec
from shoal.api.gatewayapi.gateway import GatewaySpec as K8sGatewaySpec
from shoal.api.gatewayapi.grpcroute import GRPCRouteSpec
from shoal.api.gatewayapi.httproute import HTTPRouteSpec
from shoal.api.gatewayapi.referencegrant import ReferenceGrantSpec
from shoal.api.kubernetes import PASSIVE_KINDS, KubeObjectSpec, KubeSecretSpec, KubeServiceSpec
from shoal.api.localgateway import LocalGatewaySpec
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.meshconfig import MeshConfigSpec
from shoal.api.peerauthentication import PeerAuthenticationSpec
from shoal.api.ratelimit import LocalRateLimitSpec
from shoal.api.requestauthentication import RequestAuthenticationSpec
from shoal.api.serviceentry import ServiceEntrySpec
from shoal.api.sidecar import SidecarSpec
from shoal.api.smi import SPLIT_GROUP, SPLIT_VERSIONS
from shoal.api.smi.trafficsplit import TrafficSplitSpec
from shoal.api.telemetry import TelemetrySpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.api.workloadentry import WorkloadEntrySpec
from shoal.api.workloadgroup import WorkloadGroupSpec

_ISTIO_NETWORKING = ("v1", "v1beta1", "v1alpha3")
_ISTIO_SECURITY = ("v1", "v1beta1")


@dataclass(frozen=True)
class KindSpec:
    """One kind: its API group, the versions accepted, and the model of its `spec`."""

    group: str
    versions: tuple[str, ...]
    kind: str
    spec: type[BaseModel]
    # Kubernetes objects with their fields at the top level (Secret `data`, Role `rules`):
    # the document less apiVersion, kind, metadata and status is validated as the spec
    top_level: bool = False
    # a kind shoal reads in file mode but does not use: why, for analyze's note
    note: str = ""
    # the kind resources of it are filed under when `kind` alone is taken (Gateway API's
    # Gateway beside Istio's): what Resource.kind and the registries hold
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.kind

    @property
    def api_versions(self) -> tuple[str, ...]:
        # Kubernetes' core group has no name: its apiVersion is the bare version ("v1")
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)


_REGISTRY: tuple[KindSpec, ...] = (
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "ServiceEntry", ServiceEntrySpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "WorkloadEntry", WorkloadEntrySpec),
    KindSpec("networking.istio.io", _ISTIO_NETWORKING, "WorkloadGroup", WorkloadGroupSpec),
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

_KUBERNETES: tuple[KindSpec, ...] = (
    KindSpec("", ("v1",), "Service", KubeServiceSpec),
    KindSpec("", ("v1",), "Secret", KubeSecretSpec, top_level=True),
    *(
        KindSpec(group, ("v1",), kind, KubeObjectSpec, top_level=True, note=why)
        for (group, kind), why in PASSIVE_KINDS.items()
    ),
)

# Gateway API (api/gatewayapi): read from files; its CRDs are the Gateway API project's own
_GATEWAY_API_KINDS: tuple[KindSpec, ...] = (
    KindSpec(GATEWAY_API, ("v1", "v1beta1"), "GatewayClass", GatewayClassSpec),
    KindSpec(GATEWAY_API, ("v1", "v1beta1"), "Gateway", K8sGatewaySpec, name=GATEWAY_KIND),
    KindSpec(GATEWAY_API, ("v1", "v1beta1"), "HTTPRoute", HTTPRouteSpec),
    KindSpec(GATEWAY_API, ("v1", "v1alpha2"), "GRPCRoute", GRPCRouteSpec),
    KindSpec(GATEWAY_API, ("v1beta1", "v1alpha2"), "ReferenceGrant", ReferenceGrantSpec),
)
# SMI (api/smi): read from files, translated onto VirtualServices (model/smi.py)
_SMI_KINDS: tuple[KindSpec, ...] = (
    KindSpec(SPLIT_GROUP, SPLIT_VERSIONS, "TrafficSplit", TrafficSplitSpec),
)
# watched on Kubernetes (GatewayClass is cluster-scoped; there the built-in classes serve)
GATEWAY_API_KIND_SPECS: tuple[KindSpec, ...] = tuple(
    k for k in _GATEWAY_API_KINDS if k.kind != "GatewayClass"
)
_GATEWAY_API_BY_KIND: Mapping[str, KindSpec] = MappingProxyType(
    {k.kind: k for k in _GATEWAY_API_KINDS}
)

# the config kinds (CRDs on Kubernetes); Kubernetes' own kinds are read from files only
KIND_SPECS: Mapping[str, KindSpec] = MappingProxyType({k.kind: k for k in _REGISTRY})
FILE_KIND_SPECS: Mapping[str, KindSpec] = MappingProxyType(
    {k.key: k for k in (*_REGISTRY, *_KUBERNETES, *_GATEWAY_API_KINDS, *_SMI_KINDS)}
)
KINDS: Mapping[str, type[BaseModel]] = MappingProxyType({k.kind: k.spec for k in _REGISTRY})


class UnknownKindError(ValueError):
    """The apiVersion/kind pair is not one shoal accepts; the message lists what is."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


# Kinds of Istio's API (and APIs beside it) that shoal does not implement yet: valid YAML, so
# they are refused as not implemented, with what to use instead, never as "unknown kind".
_NOT_IMPLEMENTED_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "EnvoyFilter": "shoal generates all Envoy config itself and takes no patches of it; "
        "use the Istio kinds (VirtualService, DestinationRule, Telemetry, LocalRateLimit) for "
        "what the filter did",
        "WasmPlugin": "shoal loads no Wasm modules; use AuthorizationPolicy, "
        "RequestAuthentication or LocalRateLimit for what the plugin did",
        "ProxyConfig": "set proxy options in shoal.dev/v1alpha1 MeshConfig (or the agent's "
        "flags) instead",
    }
)
_NOT_IMPLEMENTED_GROUPS: Mapping[str, str] = MappingProxyType(
    {
        "access.smi-spec.io": "use an AuthorizationPolicy (TrafficSplit is implemented)",
        "specs.smi-spec.io": "use VirtualService matches",
    }
)


def _listed() -> str:
    return ", ".join(sorted(k.kind for k in (*_REGISTRY, *_KUBERNETES) if not k.note))


def resource_kind(api_version: str, kind: str) -> str:
    """The kind a document of `apiVersion`/`kind` is filed under (see KindSpec.name)."""
    if api_version.rpartition("/")[0] == GATEWAY_API:
        spec = _GATEWAY_API_BY_KIND.get(kind)
        return spec.key if spec is not None else kind
    return kind


def _gateway_api(api_version: str, kind: str) -> KindSpec:
    spec = _GATEWAY_API_BY_KIND.get(kind)
    if spec is None:
        raise UnknownKindError(
            f"{kind} of {GATEWAY_API} is not implemented yet; shoal serves "
            f"{', '.join(sorted(_GATEWAY_API_BY_KIND))} (for TLS or TCP routing use "
            "networking.istio.io/v1 Gateway and VirtualService tls/tcp routes)",
            "kind",
        )
    if api_version not in spec.api_versions:
        raise UnknownKindError(
            f"apiVersion {api_version!r} is not accepted for {kind}; "
            f"use one of {', '.join(spec.api_versions)}",
            "apiVersion",
        )
    return spec


def lookup(api_version: str, kind: str) -> KindSpec:
    """Return the registered kind for `apiVersion`/`kind`, or raise UnknownKindError."""
    group = api_version.rpartition("/")[0]
    if group == GATEWAY_API:
        return _gateway_api(api_version, kind)
    if group in _NOT_IMPLEMENTED_GROUPS:
        raise UnknownKindError(
            f"{kind} of {group} is not implemented yet; {_NOT_IMPLEMENTED_GROUPS[group]}",
            "apiVersion",
        )
    if kind in _NOT_IMPLEMENTED_KINDS and group.endswith(".istio.io"):
        raise UnknownKindError(
            f"{kind} is an Istio kind that shoal does not implement yet; "
            f"{_NOT_IMPLEMENTED_KINDS[kind]}",
            "kind",
        )
    spec = FILE_KIND_SPECS.get(kind)
    if spec is None:
        raise UnknownKindError(f"unknown kind {kind!r}; shoal accepts {_listed()}", "kind")
    if api_version not in spec.api_versions:
        raise UnknownKindError(
            f"apiVersion {api_version!r} is not accepted for {kind}; "
            f"use one of {', '.join(spec.api_versions)}",
            "apiVersion",
        )
    return spec


def is_not_implemented_message(message: str) -> bool:
    """Whether an error's message says "not implemented yet" (valid Istio, shoal behind)."""
    return "not implemented yet" in message or "does not implement yet" in message
