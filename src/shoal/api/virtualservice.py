"""VirtualService (networking.istio.io): how requests for a host are matched and routed.

Only the routing features shoal turns into Envoy config are modelled; Istio fields that
are not implemented yet are reported as such by load.py (see unimplemented.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Annotated, Literal, Self, TypeVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from shoal.api.base import ApiModel, Bool, ExportEverywhere, Host, Int, Port, field_error
from shoal.api.duration import Duration
from shoal.api.httpgrammar import (
    AUTHORITY_NAMES,
    HeaderName,
    HeaderValue,
    MatchHeaderName,
    RemovableHeaderName,
    SettableHeaderName,
    check_authority,
    check_header_name,
)
from shoal.api.re2 import check_regex
from shoal.api.routepolicies import (
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    Percent,
)


class StringMatch(ApiModel):
    """Match a string exactly, by prefix, or by an RE2 regex.

    At most one is set. An empty match is only meaningful for headers and query
    parameters, where Istio reads it as "present"; elsewhere HTTPMatchRequest rejects it.
    """

    exact: str | None = None
    prefix: str | None = None
    regex: Annotated[str, AfterValidator(check_regex)] | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        given = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of exact, prefix or regex (found {', '.join(given)})")
        return self

    @property
    def is_empty(self) -> bool:
        return self.exact is None and self.prefix is None and self.regex is None


def _query_param_name(name: str) -> str:
    # Envoy's QueryParameterMatcher.name: 1 to 1024 bytes
    if not name or len(name.encode("utf-8", "surrogatepass")) > 1024:
        raise ValueError("a query parameter name has 1 to 1024 bytes")
    return name


QueryParamName = Annotated[str, AfterValidator(_query_param_name)]


class HTTPMatchRequest(ApiModel):
    """Conditions on a request; all given conditions must hold."""

    name: str = ""
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[MatchHeaderName, StringMatch] = Field(default_factory=dict)
    query_params: dict[QueryParamName, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: Bool = False
    without_headers: dict[MatchHeaderName, StringMatch] = Field(default_factory=dict)
    port: Port | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str = ""

    @field_validator("uri", "scheme", "method", "authority")
    @classmethod
    def _not_empty(cls, value: StringMatch | None) -> StringMatch | None:
        if value is not None and value.is_empty:
            raise ValueError("set one of exact, prefix or regex")
        return value

    @model_validator(mode="after")
    def _prefixes(self) -> Self:
        # Envoy's StringMatcher (all but the URI's RouteMatch) refuses an empty prefix
        found: list[tuple[str, StringMatch | None]] = [
            (n, getattr(self, n)) for n in ("scheme", "method", "authority")
        ]
        for field_name in ("headers", "query_params", "without_headers"):
            camel = {"query_params": "queryParams", "without_headers": "withoutHeaders"}
            found += [
                (f"{camel.get(field_name, field_name)}.{k}", m)
                for k, m in getattr(self, field_name).items()
            ]
        for where, m in found:
            if m is not None and m.prefix == "":
                raise field_error(f"{where}.prefix", "prefix must not be empty (Envoy refuses it)")
        return self


class PortSelector(ApiModel):
    number: Port


class Destination(ApiModel):
    """A service (by host), optionally one subset of it and one of its ports."""

    host: Host
    subset: str = ""
    port: PortSelector | None = None


class HeaderOperations(ApiModel):
    """Headers to overwrite (`set`), append (`add`) and drop (`remove`)."""

    set: dict[SettableHeaderName, HeaderValue] = Field(default_factory=dict)
    add: dict[SettableHeaderName, HeaderValue] = Field(default_factory=dict)
    remove: list[RemovableHeaderName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _authority(self) -> Self:
        # A Host set here becomes the request's authority (host_rewrite_literal).
        for op in ("set", "add"):
            for name, value in getattr(self, op).items():
                if name.lower() in AUTHORITY_NAMES:
                    try:
                        check_authority(value)
                    except ValueError as exc:
                        raise field_error(f"{op}.{name}", str(exc)) from None
        return self


class Headers(ApiModel):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None

    @model_validator(mode="after")
    def _no_response_authority(self) -> Self:
        for op in ("set", "add"):
            for name in getattr(self.response, op, {}):
                if name.lower() in AUTHORITY_NAMES:
                    raise field_error(
                        f"response.{op}.{name}",
                        f"{name!r} is a request header; a response cannot set it",
                    )
        return self


class RouteDestination(ApiModel):
    """A weighted destination of a TCP route."""

    destination: Destination
    weight: Annotated[Int, Field(ge=0, le=100)] = 0


class HTTPRouteDestination(RouteDestination):
    """A weighted destination of an HTTP route, with its own header changes."""

    headers: Headers | None = None


_R = TypeVar("_R", bound=RouteDestination)


def _check_weights(route: Sequence[_R]) -> list[_R]:
    """Apply Istio's weight rules; a lone destination without weight gets 100."""
    if not route:
        return []
    if len(route) == 1:
        only = route[0]
        if only.weight == 0:
            return [only.model_copy(update={"weight": 100})]
        if only.weight != 100:
            raise field_error(
                "0.weight",
                f"the only destination has weight {only.weight}; a single destination "
                "receives all traffic, so leave weight out or set it to 100",
            )
        return [only]
    total = sum(d.weight for d in route)
    if total != 100:
        weights = " + ".join(str(d.weight) for d in route)
        raise ValueError(
            f"weights of the {len(route)} destinations add up to {total} ({weights}); "
            "they must add up to 100"
        )
    return list(route)


class HTTPMirrorPolicy(ApiModel):
    """One mirror destination of `mirrors`; `percentage` defaults to 100."""

    destination: Destination
    percentage: Percent | None = None


def _method(value: str) -> str:
    try:
        return check_header_name(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an HTTP method (a token such as GET)") from None


Method = Annotated[str, AfterValidator(_method)]


class CorsPolicy(ApiModel):
    """Cross-origin resource sharing, answered by the caller's sidecar (Envoy's CORS filter)."""

    allow_origin: list[str] = Field(default_factory=list)  # deprecated: exact origins
    allow_origins: list[StringMatch] = Field(default_factory=list)
    allow_methods: list[Method] = Field(default_factory=list)
    allow_headers: list[HeaderName] = Field(default_factory=list)
    expose_headers: list[HeaderName] = Field(default_factory=list)
    max_age: Duration | None = None
    allow_credentials: Bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] = "UNSPECIFIED"

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: list[StringMatch]) -> list[StringMatch]:
        for i, m in enumerate(value):
            if m.is_empty:
                raise field_error(str(i), "set one of exact, prefix or regex")
            if m.prefix == "":
                raise field_error(f"{i}.prefix", "prefix must not be empty (Envoy refuses it)")
        return value


class HTTPRoute(ApiModel):
    """Requests matching `match` (or all, if empty) go to the weighted `route`, or are answered
    by the sidecar itself (`redirect`, `directResponse`)."""

    name: str = ""
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] = Field(default_factory=list)
    mirror_percent: Annotated[Int, Field(ge=0, le=100)] | None = None  # deprecated in Istio
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

    @field_validator("route")
    @classmethod
    def _weights(cls, value: list[HTTPRouteDestination]) -> list[HTTPRouteDestination]:
        return _check_weights(value)

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        # Istio's validateHTTPRoute: exactly one of route, redirect or directResponse.
        actions = [n for n in ("route", "redirect", "direct_response") if getattr(self, n)]
        if not actions:
            raise field_error(
                "route",
                "an HTTP route needs at least one destination in 'route', "
                "or a 'redirect' or 'directResponse'",
            )
        if len(actions) > 1:
            names = ", ".join(_CAMEL[a] for a in actions)
            raise ValueError(f"set only one of route, redirect or directResponse (found {names})")
        if self.rewrite is not None and self.redirect is not None:
            raise field_error("rewrite", "rewrite cannot be used together with redirect")
        if self.mirror is not None and self.mirrors:
            raise field_error("mirrors", "set only one of mirror or mirrors")
        if (self.mirror_percent is not None or self.mirror_percentage) and self.mirror is None:
            raise field_error("mirrorPercentage", "mirrorPercentage applies to 'mirror' only")
        return self


_CAMEL = MappingProxyType(
    {"route": "route", "redirect": "redirect", "direct_response": "directResponse"}
)


class L4MatchAttributes(ApiModel):
    """Conditions on a TCP connection (at a gateway: its port and which gateway)."""

    port: Port | None = None
    gateways: list[str] = Field(default_factory=list)


class TCPRoute(ApiModel):
    match: list[L4MatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(min_length=1)

    @field_validator("route")
    @classmethod
    def _weights(cls, value: list[RouteDestination]) -> list[RouteDestination]:
        return _check_weights(value)


class TLSMatchAttributes(ApiModel):
    """Conditions on a TLS connection a gateway passes through unopened: its SNI first."""

    sni_hosts: Annotated[list[str], Field(min_length=1)]
    port: Port | None = None
    gateways: list[str] = Field(default_factory=list)


class TLSRoute(ApiModel):
    """Where a gateway sends a TLS connection it does not terminate (PASSTHROUGH), by SNI."""

    match: Annotated[list[TLSMatchAttributes], Field(min_length=1)]
    route: list[RouteDestination] = Field(min_length=1)

    @field_validator("route")
    @classmethod
    def _weights(cls, value: list[RouteDestination]) -> list[RouteDestination]:
        return _check_weights(value)


class VirtualServiceSpec(ApiModel):
    hosts: list[Host] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    export_to: ExportEverywhere = Field(default_factory=list)

    @model_validator(mode="after")
    def _tls_at_gateways_only(self) -> Self:
        # a tls route applies to sidecars when a match names "mesh", or names no gateway
        # while the VirtualService is for sidecars (no gateways, or "mesh" among them)
        for_mesh = not self.gateways or "mesh" in self.gateways
        for i, route in enumerate(self.tls):
            if any("mesh" in m.gateways or (not m.gateways and for_mesh) for m in route.match):
                raise field_error(
                    f"tls.{i}",
                    "tls routes for sidecars (gateway 'mesh') are not implemented yet; bind "
                    "the route to a Gateway whose server has tls mode PASSTHROUGH",
                )
        return self

    def destinations(self) -> list[tuple[tuple[str | int, ...], Destination]]:
        """Every destination with its path below `spec`, e.g. ("http", 0, "route", 1)."""
        found: list[tuple[tuple[str | int, ...], Destination]] = []
        routes: list[tuple[str, int, Sequence[RouteDestination]]] = [
            ("http", i, r.route) for i, r in enumerate(self.http)
        ]
        routes += [("tls", i, r.route) for i, r in enumerate(self.tls)]
        routes += [("tcp", i, r.route) for i, r in enumerate(self.tcp)]
        for section, i, route in routes:
            for j, dest in enumerate(route):
                found.append(((section, i, "route", j, "destination"), dest.destination))
        for i, http in enumerate(self.http):
            if http.mirror is not None:
                found.append((("http", i, "mirror"), http.mirror))
            for j, mp in enumerate(http.mirrors):
                found.append((("http", i, "mirrors", j, "destination"), mp.destination))
        return found
