"""RequestAuthentication (security.istio.io): which JWTs a workload accepts.

Field names and meaning are Istio's (`security/v1/request_authentication.proto`). A request
with an invalid token is refused (401); a request without one passes unless an
AuthorizationPolicy requires `requestPrincipals`. Keys come from `jwks` (inline JSON) or
`jwksUri`; a `file:` URI (`file:///abs/path.json`, or `file:rel/path.json` relative to the
config directory) is read by the control plane, which is shoal's way to keep keys in a local
file. An `http(s)` URI is fetched by the control plane (sources/jwks.py: cached, refreshed,
each fetch bounded by the rule's `timeout`, the last good keys kept while the issuer is
down); until a first fetch succeeds the rule gets Istio's fallback, a key nobody holds, so
every token is refused.
"""

from __future__ import annotations

import json
from typing import Annotated, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from shoal.api.base import ApiModel, field_error
from shoal.api.duration import Duration
from shoal.api.httpgrammar import CookieName, HeaderName, HeaderText, check_header_name
from shoal.api.peerauthentication import WorkloadLabelSelector
from shoal.api.targetref import TargetedPolicy


def _header_or_empty(name: str) -> str:
    return check_header_name(name) if name else name


class JwtHeader(ApiModel):
    name: HeaderName
    prefix: HeaderText = ""


class ClaimToHeader(ApiModel):
    # a header added to the request: an HTTP token (Envoy's own check is looser)
    header: HeaderName = Field(pattern=r"^[-_A-Za-z0-9]+$")
    claim: str = Field(min_length=1)


class JwtRule(ApiModel):
    issuer: str = Field(min_length=1)
    audiences: list[str] = Field(default_factory=list)
    jwks_uri: str = ""
    jwks: str = ""
    from_headers: list[JwtHeader] = Field(default_factory=list)
    from_params: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    from_cookies: list[CookieName] = Field(default_factory=list)
    # the request gets this header holding the payload: an HTTP token or nothing
    output_payload_to_header: Annotated[str, AfterValidator(_header_or_empty)] = ""
    forward_original_token: bool = False
    output_claim_to_headers: list[ClaimToHeader] = Field(default_factory=list)
    # how long the control plane waits for an http(s) jwksUri (Istio's default: 5 s)
    timeout: Duration | None = None

    @field_validator("jwks")
    @classmethod
    def _json(cls, value: str) -> str:
        if value:
            try:
                keys = json.loads(value)
            except ValueError as err:
                raise ValueError(f"jwks is not JSON: {err}") from None
            if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
                raise ValueError('jwks must be a JSON Web Key Set: {"keys": [...]}')
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.jwks and self.jwks_uri:
            raise field_error("jwksUri", "set only one of jwks and jwksUri")
        return self

    @property
    def jwks_url(self) -> str | None:
        """An `http(s)` jwksUri, which the control plane fetches."""
        uri = self.jwks_uri
        return uri if uri.startswith(("http://", "https://")) else None

    @property
    def jwks_file(self) -> str | None:
        """The local path of a `file:` jwksUri (relative paths to the config directory)."""
        uri = self.jwks_uri
        if not uri.startswith("file:"):
            return None
        rest = uri[len("file:") :]
        return rest[2:] if rest.startswith("//") else rest


class RequestAuthenticationSpec(TargetedPolicy):
    selector: WorkloadLabelSelector | None = None
    jwt_rules: list[JwtRule] = Field(default_factory=list)
