"""The envelope of one config object: kind, metadata, typed spec, and where it came from.

A Resource compares and hashes by content only, never by origin: moving a resource
within a file, or to another file, is not a configuration change and must not cause a
push to proxies.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shoal.api.authorizationpolicy import AuthorizationPolicySpec
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.errors import ConfigError, render_path
from shoal.api.gateway import GatewaySpec
from shoal.api.gatewayapi.gateway import GatewayClassSpec
from shoal.api.gatewayapi.gateway import GatewaySpec as K8sGatewaySpec
from shoal.api.gatewayapi.grpcroute import GRPCRouteSpec
from shoal.api.gatewayapi.httproute import HTTPRouteSpec
from shoal.api.gatewayapi.referencegrant import ReferenceGrantSpec
from shoal.api.kubernetes import KubeObjectSpec, KubeSecretSpec, KubeServiceSpec
from shoal.api.localgateway import LocalGatewaySpec
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.meshconfig import MeshConfigSpec
from shoal.api.meta import ObjectMeta
from shoal.api.peerauthentication import PeerAuthenticationSpec
from shoal.api.ratelimit import LocalRateLimitSpec
from shoal.api.requestauthentication import RequestAuthenticationSpec
from shoal.api.serviceentry import ServiceEntrySpec
from shoal.api.sidecar import SidecarSpec
from shoal.api.smi.trafficsplit import TrafficSplitSpec
from shoal.api.telemetry import TelemetrySpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.api.workloadentry import WorkloadEntrySpec
from shoal.api.workloadgroup import WorkloadGroupSpec

Spec = (
    ServiceEntrySpec
    | WorkloadEntrySpec
    | WorkloadGroupSpec
    | VirtualServiceSpec
    | DestinationRuleSpec
    | LocalWorkloadSpec
    | SidecarSpec
    | GatewaySpec
    | LocalRateLimitSpec
    | LocalGatewaySpec
    | MeshConfigSpec
    | PeerAuthenticationSpec
    | AuthorizationPolicySpec
    | RequestAuthenticationSpec
    | TelemetrySpec
    | KubeServiceSpec
    | KubeSecretSpec
    | KubeObjectSpec
    | GatewayClassSpec
    | K8sGatewaySpec
    | HTTPRouteSpec
    | GRPCRouteSpec
    | ReferenceGrantSpec
    | TrafficSplitSpec
)
Path = tuple[str | int, ...]
ResourceKey = tuple[str, str, str]


def _no_lines() -> Mapping[Path, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Origin:
    """Where a resource was read from, with the line of each of its fields."""

    file: str
    line: int
    lines: Mapping[Path, int] = field(default_factory=_no_lines, repr=False)
    # added to every line in `lines`: a document that moved down a file keeps its parsed
    # `lines` and says how far it moved (api/documents.py)
    shift: int = 0

    def line_of(self, path: Path) -> int:
        """Line of `path`, or of its longest prefix that has one, else the document's."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line + self.shift
        return self.line

    def shifted(self, lines: int) -> Origin:
        """This origin for the same document `lines` further down its file."""
        if lines == 0:
            return self
        return Origin(self.file, self.line + lines, self.lines, self.shift + lines)


@dataclass(frozen=True)
class Resource:
    """One validated config object."""

    api_version: str
    kind: str
    meta: ObjectMeta
    spec: Spec
    origin: Origin = field(compare=False)

    @functools.cached_property
    def key(self) -> ResourceKey:
        # asked for by every sort of the whole config on every reload: made once
        return (self.kind, self.meta.namespace, self.meta.name)

    @property
    def namespaced_name(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"

    def error(self, path: Path, message: str) -> ConfigError:
        """A ConfigError about the field at `path` (from the document root) of this resource."""
        return ConfigError(
            file=self.origin.file,
            line=self.origin.line_of(path),
            field=render_path(path),
            message=message,
            kind=self.kind,
            name=self.namespaced_name,
        )

    def __hash__(self) -> int:
        # The spec models hold lists and dicts, so they cannot be hashed; the key is a
        # valid hash because equal resources have equal keys.
        return hash((self.api_version, *self.key))
