"""GRPCRoute (gateway.networking.k8s.io/v1): gRPC routing by service and method."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, field_error
from shoal.api.gatewayapi.common import BackendRef, Hostname, ParentReference
from shoal.api.gatewayapi.httproute import HeaderMatch, HTTPRouteFilter
from shoal.api.re2 import check_regex

_SERVICE = re.compile(r"^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


class GRPCMethodMatch(ApiModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    service: str | None = None
    method: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.service is None and self.method is None:
            raise field_error("service", "a method match needs service, method or both")
        for name, value, pattern in (
            ("service", self.service, _SERVICE),
            ("method", self.method, _METHOD),
        ):
            if value is None:
                continue
            if self.type == "RegularExpression":
                try:
                    check_regex(value)
                except ValueError as exc:
                    raise field_error(name, str(exc)) from None
            elif not pattern.fullmatch(value):
                raise field_error(name, f"{value!r} is not a gRPC {name} name")
        return self


class GRPCRouteMatch(ApiModel):
    method: GRPCMethodMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list, max_length=16)


class GRPCBackendRef(BackendRef):
    pass


_GRPC_FILTERS = frozenset({"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror"})


class GRPCRouteRule(ApiModel):
    name: str = ""
    matches: list[GRPCRouteMatch] = Field(default_factory=list, max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[GRPCBackendRef] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _filters(self) -> Self:
        for i, f in enumerate(self.filters):
            if f.type not in _GRPC_FILTERS:
                raise field_error(
                    f"filters.{i}.type",
                    f"a GRPCRoute takes RequestHeaderModifier, ResponseHeaderModifier and "
                    f"RequestMirror filters, not {f.type}",
                )
        return self


class GRPCRouteSpec(ApiModel):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)
    rules: list[GRPCRouteRule] = Field(default_factory=lambda: [GRPCRouteRule()], max_length=16)
