"""GatewayClass and Gateway (gateway.networking.k8s.io/v1): the edge proxies and their listeners.

A Gateway's listeners (port, protocol, hostname, TLS, which routes may attach) become the
servers of an Istio Gateway whose selector is the label `gateway.networking.k8s.io/gateway-name`
(model/gatewayapi.py), so a `shoal up` LocalGateway or a router agent with that label serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, Port, field_error
from shoal.api.gatewayapi.common import Hostname, ObjectName, SecretObjectReference


class GatewayClassSpec(ApiModel):
    controller_name: str = Field(min_length=1)
    description: str = ""


class RouteGroupKind(ApiModel):
    group: str = "gateway.networking.k8s.io"
    kind: Literal["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"]


class RouteNamespaces(ApiModel):
    from_: Literal["Same", "All", "Selector"] = Field("Same", alias="from")

    @model_validator(mode="after")
    def _not_selector(self) -> Self:
        if self.from_ == "Selector":
            # namespaces by label need Namespace objects, which files do not have
            raise field_error("from", "from: Selector is not implemented yet; use Same or All")
        return self


class AllowedRoutes(ApiModel):
    namespaces: RouteNamespaces = Field(default_factory=RouteNamespaces)
    kinds: list[RouteGroupKind] = Field(default_factory=list)


class GatewayTLSConfig(ApiModel):
    mode: Literal["Terminate", "Passthrough"] = "Terminate"
    certificate_refs: list[SecretObjectReference] = Field(default_factory=list, max_length=64)


Protocol = Literal["HTTP", "HTTPS", "TLS", "TCP"]
# the route kinds each protocol takes (spec: "Listener.AllowedRoutes.Kinds" defaults)
ROUTE_KINDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "HTTP": frozenset({"HTTPRoute", "GRPCRoute"}),
        "HTTPS": frozenset({"HTTPRoute", "GRPCRoute"}),
        "TLS": frozenset({"TLSRoute"}),
        "TCP": frozenset({"TCPRoute"}),
    }
)


class Listener(ApiModel):
    name: ObjectName
    hostname: Hostname | None = None
    port: Port
    protocol: Protocol
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes = Field(default_factory=AllowedRoutes)

    @model_validator(mode="after")
    def _tls_fits(self) -> Self:
        if self.protocol == "HTTPS":
            if self.tls is None or not self.tls.certificate_refs:
                raise field_error(
                    "tls.certificateRefs",
                    "an HTTPS listener needs tls.certificateRefs naming the Secret with its "
                    "certificate (a kubernetes.io/tls Secret or <config-dir>/secrets/NAME/)",
                )
            if self.tls.mode != "Terminate":
                raise field_error("tls.mode", "an HTTPS listener terminates TLS (mode Terminate)")
        elif self.protocol == "TLS":
            if self.tls is None:
                raise field_error("tls", "a TLS listener needs tls (mode Terminate or Passthrough)")
            if self.tls.mode == "Terminate" and not self.tls.certificate_refs:
                raise field_error(
                    "tls.certificateRefs", "a terminating TLS listener needs tls.certificateRefs"
                )
        elif self.tls is not None:
            raise field_error("tls", f"a {self.protocol} listener has no tls")
        return self

    def route_kinds(self) -> frozenset[str]:
        """The route kinds that may attach: allowedRoutes.kinds, else the protocol's."""
        listed = {k.kind for k in self.allowed_routes.kinds if k.group == _GROUP}
        return frozenset(listed) if self.allowed_routes.kinds else ROUTE_KINDS[self.protocol]


_GROUP = "gateway.networking.k8s.io"


class GatewaySpec(ApiModel):
    gateway_class_name: ObjectName
    listeners: list[Listener] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        names: dict[str, int] = {}
        taken: dict[tuple[int, str], int] = {}
        for i, listener in enumerate(self.listeners):
            first = names.setdefault(listener.name, i)
            if first != i:
                raise field_error(
                    f"listeners.{i}.name",
                    f"listener name {listener.name!r} is also listeners[{first}]'s",
                )
            where = (listener.port, listener.hostname or "")
            first = taken.setdefault(where, i)
            if first != i:
                raise field_error(
                    f"listeners.{i}.hostname",
                    f"port {listener.port} with hostname {listener.hostname or '(any)'} is "
                    f"already listeners[{first}]'s; listeners of one port differ by hostname",
                )
            for j, other in enumerate(self.listeners[:i]):
                if other.port == listener.port and _family(other) != _family(listener):
                    raise field_error(
                        f"listeners.{i}.protocol",
                        f"port {listener.port} is {other.protocol} in listeners[{j}]; one port "
                        f"cannot also be {listener.protocol}",
                    )
        return self


def _family(listener: Listener) -> str:
    # listeners of one port share one Envoy listener: HTTPS ones are told apart by SNI, HTTP
    # ones by Host; terminated HTTP and raw TLS/TCP streams cannot share it
    return listener.protocol
