"""AuthorizationPolicy (security.istio.io): who may call what on a workload.

Field names and meaning are Istio's (`security/v1beta1/authorization_policy.proto`):
`action` ALLOW (default), DENY or AUDIT; `rules` of `from` sources, `to` operations and
`when` conditions. `targetRef(s)` bind a policy to a Gateway API Gateway's proxies instead
of a `selector` (api/targetref.py). CUSTOM (an external authorizer) is not implemented yet
and says so. Translation to Envoy RBAC is generate/authz.py; the `when` keys it understands
are listed in `CONDITION_KEYS` and checked here, so a typo is a load error with its field.
"""

from __future__ import annotations

import ipaddress
import re
from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from shoal.api.base import ApiModel, field_error
from shoal.api.peerauthentication import WorkloadLabelSelector
from shoal.api.targetref import TargetedPolicy

# Istio's condition keys shoal translates (authorization-policy conditions reference).
CONDITION_KEYS = (
    "request.headers",
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "request.auth.claims",
    "destination.port",
    "connection.sni",
)
_BRACKETED = re.compile(r"^(request\.headers|request\.auth\.claims)\[([^\]]+)\]$")


def split_key(key: str) -> tuple[str, str]:
    """`request.headers[x-a]` -> ("request.headers", "x-a"); `source.ip` -> ("source.ip", "")."""
    found = _BRACKETED.match(key)
    if found:
        return found.group(1), found.group(2)
    return key, ""


_PORT = re.compile(r"[0-9]{1,5}")


def check_port_text(port: str) -> str:
    """A port written as a string (Istio's `ports`, `destination.port` values): 1..65535."""
    if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} must be a number in 1..65535")
    return port


def check_ip_block(block: str) -> str:
    """An IP address or CIDR block (`10.0.0.0/8`, `::1`): Envoy's CidrRange refuses others."""
    address, _, length = block.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f"{block!r} is not an IP address or CIDR block (e.g. 10.0.0.0/8)"
        ) from None
    if length and (not length.isascii() or not length.isdigit() or int(length) > ip.max_prefixlen):
        raise ValueError(f"{block!r}: the prefix length must be a number in 0..{ip.max_prefixlen}")
    return block


IpBlock = Annotated[str, AfterValidator(check_ip_block)]
PortText = Annotated[str, AfterValidator(check_port_text)]


class Source(ApiModel):
    principals: list[str] = Field(default_factory=list)
    not_principals: list[str] = Field(default_factory=list)
    request_principals: list[str] = Field(default_factory=list)
    not_request_principals: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    not_namespaces: list[str] = Field(default_factory=list)
    ip_blocks: list[IpBlock] = Field(default_factory=list)
    not_ip_blocks: list[IpBlock] = Field(default_factory=list)
    remote_ip_blocks: list[IpBlock] = Field(default_factory=list)
    not_remote_ip_blocks: list[IpBlock] = Field(default_factory=list)


class Operation(ApiModel):
    hosts: list[str] = Field(default_factory=list)
    not_hosts: list[str] = Field(default_factory=list)
    ports: list[PortText] = Field(default_factory=list)
    not_ports: list[PortText] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    not_methods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    not_paths: list[str] = Field(default_factory=list)


class From(ApiModel):
    source: Source


class To(ApiModel):
    operation: Operation


class Condition(ApiModel):
    key: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)
    not_values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> Self:
        name, arg = split_key(self.key)
        if name not in CONDITION_KEYS or (
            name in ("request.headers", "request.auth.claims") and not arg
        ):
            raise field_error(
                "key",
                f"condition key {self.key!r} is not supported; use one of "
                "request.headers[NAME], request.auth.claims[NAME], "
                + ", ".join(k for k in CONDITION_KEYS if k not in _ARG_KEYS),
            )
        if not self.values and not self.not_values:
            raise field_error("values", "a condition needs values or notValues")
        check = _VALUE_CHECKS.get(name)
        if check is not None:
            for where, values in (("values", self.values), ("notValues", self.not_values)):
                for i, value in enumerate(values):
                    try:
                        check(value)
                    except ValueError as exc:
                        raise field_error(f"{where}.{i}", str(exc)) from None
        return self


_ARG_KEYS = ("request.headers", "request.auth.claims")
# condition values that become Envoy numbers or CIDR ranges, checked as such
_VALUE_CHECKS = MappingProxyType(
    {
        "destination.port": check_port_text,
        "source.ip": check_ip_block,
        "remote.ip": check_ip_block,
    }
)


class Rule(ApiModel):
    from_: list[From] = Field(default_factory=list, alias="from")
    to: list[To] = Field(default_factory=list)
    when: list[Condition] = Field(default_factory=list)


class AuthorizationPolicySpec(TargetedPolicy):
    selector: WorkloadLabelSelector | None = None
    rules: list[Rule] = Field(default_factory=list)
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"] = "ALLOW"

    @field_validator("action")
    @classmethod
    def _custom(cls, value: str) -> str:
        if value == "CUSTOM":
            raise ValueError("action CUSTOM (external authorization) is not implemented yet")
        return value
