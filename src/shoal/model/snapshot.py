"""The immutable `MeshSnapshot`: every service, endpoint and routing rule at one instant.

A snapshot is built once per config or registry change and then only read, by every proxy's
config generation, so it carries the indexes generation needs (rules by host) precomputed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal.api import ConfigError, Resource, fqdn
from shoal.api.meshconfig import MeshConfigSpec

HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})


@dataclass(frozen=True)
class Port:
    """One port of a service, as the ServiceEntry declares it."""

    number: int
    name: str
    protocol: str
    target_port: int | None = None

    @property
    def is_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS

    @property
    def is_http2(self) -> bool:
        return self.protocol in ("HTTP2", "GRPC", "GRPC-WEB")


@dataclass(frozen=True)
class Endpoint:
    """One workload instance that serves a service."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    # port name -> port on the workload; absent names fall back to the service's target port
    ports: Mapping[str, int] = field(default_factory=dict)
    weight: int = 1
    service_account: str = ""
    healthy: bool = True
    # "istio": the workload's sidecar accepts mesh mTLS (Istio's `security.istio.io/tlsMode`)
    tls_mode: str = "disabled"
    # "region/zone/subzone" as Istio writes it (WorkloadEntry `locality`, Kubernetes topology)
    locality: str = ""
    # who the instance is, for the callers' metrics (`destination_workload`, ..._namespace)
    workload: str = ""
    namespace: str = ""

    def port_for(self, port: Port) -> int:
        return self.ports.get(port.name) or port.target_port or port.number

    def matches(self, selector: Mapping[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class Service:
    """A host in the mesh registry (from a ServiceEntry, later also Kubernetes Services)."""

    hostname: str
    namespace: str
    ports: tuple[Port, ...]
    addresses: tuple[str, ...] = ()
    resolution: str = "STATIC"
    location: str = "MESH_INTERNAL"
    endpoints: tuple[Endpoint, ...] = ()
    export_to: tuple[str, ...] = ()

    def port(self, number: int) -> Port | None:
        return next((p for p in self.ports if p.number == number), None)

    @functools.cached_property
    def without_endpoints(self) -> Service:
        """This service with no endpoints (made once per service object; a snapshot rebuilt
        for one edit keeps the other services' objects, so comparing two is mostly `is`)."""
        return dataclasses.replace(self, endpoints=()) if self.endpoints else self


@dataclass(frozen=True)
class Credential:
    """A TLS certificate chain and key for gateways (`credentialName`), read by sources."""

    name: str
    cert_pem: str
    key_pem: str = field(repr=False)
    ca_pem: str = ""  # the CAs a MUTUAL server trusts for client certificates (`ca.crt`)


@dataclass(frozen=True)
class MeshSnapshot:
    """Everything a proxy's config is generated from. Never mutated after it is built."""

    version: str
    services: Mapping[str, Service]
    virtual_services: tuple[Resource, ...] = ()
    destination_rules: tuple[Resource, ...] = ()
    errors: tuple[ConfigError, ...] = ()
    # hostname -> the VirtualServices that bind it, in the order Istio evaluates them
    # (oldest first; shoal uses namespace/name order since files carry no timestamps)
    vs_by_host: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)
    dr_by_host: Mapping[str, Resource] = field(default_factory=dict)
    namespaces: frozenset[str] = frozenset()
    # edge patterns: Gateways (for router proxies), Sidecars (outbound traffic policy),
    # LocalRateLimits, and gateway credentials by name
    gateways: tuple[Resource, ...] = ()
    sidecars: tuple[Resource, ...] = ()
    rate_limits: tuple[Resource, ...] = ()
    credentials: Mapping[str, Credential] = field(default_factory=dict)
    # mesh-wide defaults (shoal.dev MeshConfig; the first in namespace/name order)
    mesh_config: MeshConfigSpec = field(default_factory=MeshConfigSpec)
    # security (issue 5): PeerAuthentications, AuthorizationPolicies, RequestAuthentications
    # in namespace/name order, and the contents of local files they or DestinationRule `tls`
    # name (JWKS, certificates), read by the sources layer, by the path as written
    peer_authentications: tuple[Resource, ...] = ()
    authorization_policies: tuple[Resource, ...] = ()
    request_authentications: tuple[Resource, ...] = ()
    # Telemetry resources (which metrics, which labels), in namespace/name order
    telemetries: tuple[Resource, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, host: str, namespace: str) -> str:
        """A host as written in a rule of `namespace`, as the full name services are keyed by."""
        return fqdn(host, namespace, namespaces=self.namespaces)
