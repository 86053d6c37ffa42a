"""Per-route policies of a VirtualService HTTP route (networking.istio.io), as Istio names them.

Retries (`HTTPRetry`), fault injection (`HTTPFaultInjection`), URI/authority rewrites
(`HTTPRewrite`), redirects (`HTTPRedirect`) and fixed answers (`HTTPDirectResponse`). Field
names, units and defaults follow istio/api networking/v1alpha3/virtual_service.proto; the
checks are those of Istio's validation (pkg/config/validation), so a mistake is reported at
load time with its field instead of being NACKed by Envoy. CORS and mirroring need
`StringMatch`/`Destination` and live in virtualservice.py.
"""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import Callable
from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from shoal.api.base import ApiModel, Bool, Int, Port, field_error
from shoal.api.duration import Duration
from shoal.api.httpgrammar import (
    check_authority,
    check_path,
    check_rewrite_substitution,
    check_scheme,
)
from shoal.api.re2 import capture_groups, check_regex

# Envoy's num_retries and friends are uint32; Istio's fields are int32.
MAX_INT32 = 2**31 - 1
# Envoy refuses a direct response body above this size (max_direct_response_body_size_bytes).
MAX_DIRECT_BODY = 4096

_MIN_DURATION = 1e-3  # Istio: "MUST be >=1ms"


def _at_least_1ms(value: float | None) -> float | None:
    if value is not None and value < _MIN_DURATION:
        raise ValueError(f"must be at least 1ms, got {value:g}s")
    return value


class Percent(ApiModel):
    """A percentage in [0.0, 100.0] (Istio's `Percent`)."""

    value: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0

    @field_validator("value", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number between 0 and 100, got {value!r}")
        return value


class HTTPRetry(ApiModel):
    """How often and on what a failed request is retried; `attempts: 0` turns retries off."""

    attempts: Annotated[Int, Field(ge=0, le=MAX_INT32)] = 0
    per_try_timeout: Duration | None = None
    retry_on: str = ""
    retry_remote_localities: Bool | None = None
    retry_ignore_previous_hosts: Bool | None = None
    backoff: Duration | None = None

    _per_try = field_validator("per_try_timeout", "backoff")(_at_least_1ms)

    @field_validator("retry_on")
    @classmethod
    def _retry_on(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            if part.isdigit():
                if not 100 <= int(part) <= 599:
                    raise ValueError(f"{part} is not an HTTP status code")
            elif part not in RETRY_ON:
                raise ValueError(
                    f"{part!r} is not a retry condition; use HTTP status codes or "
                    f"{', '.join(sorted(RETRY_ON))}"
                )
        return value


# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions (router filter docs).
RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)


class Delay(ApiModel):
    """Wait `fixedDelay` before forwarding `percentage` of requests."""

    percent: Annotated[Int, Field(ge=0, le=100)] | None = None  # deprecated in Istio
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None

    _min = field_validator("fixed_delay")(_at_least_1ms)

    @model_validator(mode="after")
    def _has_delay(self) -> Self:
        if self.exponential_delay is not None:
            raise field_error("exponentialDelay", "exponential delays are not supported by Istio")
        if self.fixed_delay is None:
            raise field_error("fixedDelay", "a delay needs fixedDelay (e.g. '5s')")
        return self

    @property
    def fraction(self) -> float:
        """Percent of requests delayed: `percentage`, else the deprecated `percent`, else 0."""
        if self.percentage is not None:
            return self.percentage.value
        return float(self.percent or 0)


# gRPC status names Istio accepts for abort.grpcStatus, with their codes.
GRPC_STATUS = MappingProxyType(
    {
        name: code
        for code, name in enumerate(
            (
                "OK",
                "CANCELLED",
                "UNKNOWN",
                "INVALID_ARGUMENT",
                "DEADLINE_EXCEEDED",
                "NOT_FOUND",
                "ALREADY_EXISTS",
                "PERMISSION_DENIED",
                "RESOURCE_EXHAUSTED",
                "FAILED_PRECONDITION",
                "ABORTED",
                "OUT_OF_RANGE",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS",
                "UNAUTHENTICATED",
            )
        )
    }
)


class Abort(ApiModel):
    """Answer `percentage` of requests with `httpStatus` (or `grpcStatus`) instead of forwarding."""

    http_status: Annotated[Int, Field(ge=200, le=599)] | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _one_error(self) -> Self:
        if self.http2_error is not None:
            raise field_error("http2Error", "http2Error aborts are not supported by Istio")
        given = [n for n in ("http_status", "grpc_status") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of httpStatus or grpcStatus")
        if self.grpc_status is not None and self.grpc_status not in GRPC_STATUS:
            raise field_error(
                "grpcStatus",
                f"{self.grpc_status!r} is not a gRPC status; use one of "
                f"{', '.join(GRPC_STATUS)} (names, e.g. UNAVAILABLE, not numbers)",
            )
        return self


class HTTPFaultInjection(ApiModel):
    """Delays and aborts injected by the caller's sidecar; independent of each other."""

    delay: Delay | None = None
    abort: Abort | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.delay is None and self.abort is None:
            raise ValueError("a fault needs delay, abort or both")
        return self


class RegexRewrite(ApiModel):
    match: Annotated[str, Field(min_length=1)]
    rewrite: str

    _re2 = field_validator("match")(check_regex)

    @model_validator(mode="after")
    def _substitution(self) -> Self:
        try:
            check_rewrite_substitution(self.rewrite, capture_groups(self.match))
        except ValueError as exc:
            raise field_error("rewrite", str(exc)) from None
        return self


class HTTPRewrite(ApiModel):
    """Rewrite the path (the matched prefix, or by regex) and/or the authority before forwarding."""

    uri: str = ""
    authority: str = ""
    uri_regex_rewrite: RegexRewrite | None = None

    @model_validator(mode="after")
    def _one_uri(self) -> Self:
        _check(self.uri and "uri", lambda: check_path(self.uri))
        _check(self.authority and "authority", lambda: check_authority(self.authority))
        if self.uri and self.uri_regex_rewrite is not None:
            raise ValueError("set only one of uri or uriRegexRewrite")
        if not (self.uri or self.authority or self.uri_regex_rewrite):
            raise ValueError("a rewrite needs uri, uriRegexRewrite or authority")
        return self


def _check(field: str, check: Callable[[], object]) -> None:
    """Run `check` if `field` (a name, or "" when the value is unset) is set; locate its error."""
    if field:
        try:
            check()
        except ValueError as exc:
            raise field_error(field, str(exc)) from None


# Istio's supported redirect codes (route.go ApplyRedirect); 0 means 301.
REDIRECT_CODES = (301, 302, 303, 307, 308)


class HTTPRedirect(ApiModel):
    """Answer with a redirect instead of forwarding (301 unless `redirectCode` says otherwise)."""

    uri: str = ""
    authority: str = ""
    port: Port | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str = ""
    redirect_code: Int = 0
    prefix_rewrite: str = ""

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _check(self.uri and "uri", lambda: check_path(self.uri, query=True))
        _check(self.prefix_rewrite and "prefixRewrite", lambda: check_path(self.prefix_rewrite))
        _check(self.authority and "authority", lambda: check_authority(self.authority))
        _check(self.scheme and "scheme", lambda: check_scheme(self.scheme))
        if self.redirect_code and self.redirect_code not in REDIRECT_CODES:
            raise field_error(
                "redirectCode",
                f"{self.redirect_code} is not a redirect code Istio supports "
                f"({', '.join(map(str, REDIRECT_CODES))})",
            )
        if self.port is not None and self.derive_port is not None:
            raise ValueError("set only one of port or derivePort")
        if self.uri and self.prefix_rewrite:
            raise ValueError("set only one of uri or prefixRewrite")
        targets = (self.uri, self.authority, self.prefix_rewrite, self.scheme, self.port)
        if not any(targets) and self.derive_port is None:
            raise ValueError("a redirect needs uri, authority, scheme, port or prefixRewrite")
        return self


class HTTPBody(ApiModel):
    string: str | None = None
    bytes: str | None = None  # base64, as in Istio's YAML

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.string is None) == (self.bytes is None):
            raise ValueError("set exactly one of string or bytes")
        if self.bytes is not None:
            try:
                base64.b64decode(self.bytes, validate=True)
            except binascii.Error:
                raise field_error("bytes", "bytes must be base64") from None
        size = len(self.data())
        if size > MAX_DIRECT_BODY:
            raise field_error(
                "string" if self.string is not None else "bytes",
                f"the body has {size} bytes; Envoy sends direct responses of at most "
                f"{MAX_DIRECT_BODY} bytes",
            )
        return self

    def data(self) -> builtins.bytes:
        if self.bytes is not None:
            return base64.b64decode(self.bytes)
        return (self.string or "").encode("utf-8", "surrogatepass")


class HTTPDirectResponse(ApiModel):
    """Answer with this status and body; nothing is forwarded."""

    status: Annotated[Int, Field(ge=200, le=599)]
    body: HTTPBody | None = None
