"""HTTPRoute (gateway.networking.k8s.io/v1): HTTP routing attached to Gateways or, for GAMMA,
to a Service (the mesh's sidecars then route requests for that Service by it)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, Int, Port, field_error
from shoal.api.gatewayapi.common import (
    BackendObjectReference,
    BackendRef,
    GatewayDuration,
    Hostname,
    ParentReference,
    duration_ms,
)
from shoal.api.httpgrammar import HeaderValue, MatchHeaderName, SettableHeaderName
from shoal.api.re2 import check_regex


class PathMatch(ApiModel):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = Field("/", min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.type == "RegularExpression":
            try:
                check_regex(self.value)
            except ValueError as exc:
                raise field_error("value", str(exc)) from None
        elif not self.value.startswith("/"):
            raise field_error("value", f"path {self.value!r} must start with '/'")
        elif "//" in self.value or "?" in self.value or "#" in self.value:
            raise field_error("value", f"path {self.value!r} may not hold '//', '?' or '#'")
        return self


class HeaderMatch(ApiModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: MatchHeaderName
    value: str = Field(max_length=4096)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.type == "RegularExpression":
            try:
                check_regex(self.value)
            except ValueError as exc:
                raise field_error("value", str(exc)) from None
        return self


class QueryParamMatch(HeaderMatch):
    name: Annotated[str, Field(min_length=1, max_length=256)]


Method = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


class HTTPRouteMatch(ApiModel):
    path: PathMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list, max_length=16)
    query_params: list[QueryParamMatch] = Field(default_factory=list, max_length=16)
    method: Method | None = None


class HTTPHeader(ApiModel):
    name: SettableHeaderName
    value: HeaderValue


class HeaderModifier(ApiModel):
    set: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    add: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    remove: list[SettableHeaderName] = Field(default_factory=list, max_length=16)


class PathModifier(ApiModel):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        field = "replaceFullPath" if self.type == "ReplaceFullPath" else "replacePrefixMatch"
        value = self.replace_full_path if field == "replaceFullPath" else self.replace_prefix_match
        other = self.replace_prefix_match if field == "replaceFullPath" else self.replace_full_path
        if value is None:
            raise field_error(field, f"type {self.type} needs {field}")
        if other is not None:
            raise field_error("type", f"type {self.type} takes {field} only")
        if not value.startswith("/"):
            raise field_error(field, f"{value!r} must start with '/'")
        return self

    @property
    def value(self) -> str:
        return self.replace_full_path or self.replace_prefix_match or "/"


class RequestRedirect(ApiModel):
    scheme: Literal["http", "https"] | None = None
    hostname: Hostname | None = None
    path: PathModifier | None = None
    port: Port | None = None
    status_code: Literal[301, 302] = 302

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not (self.scheme or self.hostname or self.path or self.port):
            # Location would be the request's own URL: a loop, not a redirect
            raise field_error(
                "statusCode", "a RequestRedirect needs scheme, hostname, path or port"
            )
        return self


class URLRewrite(ApiModel):
    hostname: Hostname | None = None
    path: PathModifier | None = None


class RequestMirror(ApiModel):
    backend_ref: BackendObjectReference
    percent: Annotated[Int, Field(ge=0, le=100)] | None = None


FilterType = Literal[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "RequestMirror",
    "ExtensionRef",
    "CORS",
]
_FIELD_OF = MappingProxyType(
    {
        "RequestHeaderModifier": "requestHeaderModifier",
        "ResponseHeaderModifier": "responseHeaderModifier",
        "RequestRedirect": "requestRedirect",
        "URLRewrite": "urlRewrite",
        "RequestMirror": "requestMirror",
    }
)


class HTTPRouteFilter(ApiModel):
    type: FilterType
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: URLRewrite | None = None
    request_mirror: RequestMirror | None = None

    @model_validator(mode="after")
    def _matches_type(self) -> Self:
        if self.type not in _FIELD_OF:
            raise field_error(
                "type",
                f"filter type {self.type} is not implemented yet; use RequestHeaderModifier, "
                "ResponseHeaderModifier, RequestRedirect, URLRewrite or RequestMirror",
            )
        wanted = _FIELD_OF[self.type]
        for name in _FIELD_OF.values():
            attr = "url_rewrite" if name == "urlRewrite" else _snake(name)
            present = getattr(self, attr) is not None
            if name == wanted and not present:
                raise field_error(name, f"a {self.type} filter needs {name}")
            if name != wanted and present:
                raise field_error(name, f"{name} belongs to a filter of another type")
        return self


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


class HTTPRouteTimeouts(ApiModel):
    request: GatewayDuration | None = None
    backend_request: GatewayDuration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.request is not None and self.backend_request is not None:
            request, backend = duration_ms(self.request), duration_ms(self.backend_request)
            if request and backend > request:
                raise field_error(
                    "backendRequest",
                    f"backendRequest {self.backend_request} is longer than request {self.request}",
                )
        return self


class HTTPBackendRef(BackendRef):
    filters: list[HTTPRouteFilter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_filters(self) -> Self:
        if self.filters:
            raise field_error(
                "filters",
                "filters on one backendRef are not implemented yet; put them on the rule",
            )
        return self


class HTTPRouteRule(ApiModel):
    name: str = ""
    matches: list[HTTPRouteMatch] = Field(default_factory=list, max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[HTTPBackendRef] = Field(default_factory=list, max_length=16)
    timeouts: HTTPRouteTimeouts | None = None

    @model_validator(mode="after")
    def _filters_fit(self) -> Self:
        kinds = [f.type for f in self.filters]
        for i, kind in enumerate(kinds):
            if kind != "RequestMirror" and kinds.index(kind) != i:
                raise field_error(f"filters.{i}.type", f"a rule has at most one {kind} filter")
        if "RequestRedirect" in kinds and "URLRewrite" in kinds:
            raise field_error(
                f"filters.{kinds.index('URLRewrite')}",
                "a rule cannot both redirect (RequestRedirect) and rewrite (URLRewrite)",
            )
        if "RequestRedirect" in kinds and self.backend_refs:
            raise field_error(
                "backendRefs", "a rule that redirects (RequestRedirect) forwards to no backendRefs"
            )
        for i, f in enumerate(self.filters):
            modifier = f.url_rewrite or f.request_redirect
            path = modifier.path if modifier is not None else None
            if path is not None and path.type == "ReplacePrefixMatch":
                for j, m in enumerate(self.matches):
                    if m.path is not None and m.path.type != "PathPrefix":
                        raise field_error(
                            f"filters.{i}",
                            f"ReplacePrefixMatch needs PathPrefix matches; matches[{j}] is "
                            f"{m.path.type}",
                        )
        return self


class HTTPRouteSpec(ApiModel):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)
    rules: list[HTTPRouteRule] = Field(default_factory=lambda: [HTTPRouteRule()], max_length=16)
