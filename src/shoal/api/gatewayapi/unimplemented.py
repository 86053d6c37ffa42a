"""Gateway API fields shoal knows about but does not implement yet, per model (merged into
api/unimplemented.py's table): valid Gateway API, so refused as "not implemented yet", never
as an unknown field."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel

from shoal.api.gatewayapi.common import ParentReference
from shoal.api.gatewayapi.gateway import (
    GatewayClassSpec,
    GatewaySpec,
    GatewayTLSConfig,
    RouteNamespaces,
)
from shoal.api.gatewayapi.grpcroute import GRPCRouteRule
from shoal.api.gatewayapi.httproute import HTTPRouteFilter, HTTPRouteRule, RequestMirror

GATEWAY_API_NOT_IMPLEMENTED: Mapping[type[BaseModel], frozenset[str]] = MappingProxyType(
    {
        GatewayClassSpec: frozenset({"parametersRef"}),
        # addresses come from where the proxy runs (LocalGateway, the agent's instance IPs)
        GatewaySpec: frozenset({"addresses", "infrastructure", "backendTLS", "allowedListeners"}),
        GatewayTLSConfig: frozenset({"options", "frontendValidation"}),
        # namespaces by label need Namespace objects, which files do not have
        RouteNamespaces: frozenset({"selector"}),
        HTTPRouteRule: frozenset({"sessionPersistence", "retry"}),
        GRPCRouteRule: frozenset({"sessionPersistence"}),
        HTTPRouteFilter: frozenset({"extensionRef", "cors", "externalAuth"}),
        RequestMirror: frozenset({"fraction"}),
        ParentReference: frozenset(),
    }
)
