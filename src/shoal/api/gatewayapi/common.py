"""Types shared by the Gateway API kinds: object references, hostnames, durations."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Annotated

from pydantic import AfterValidator, Field

from shoal.api.base import ApiModel, DnsLabel, Int, Port
from shoal.api.hosts import check_host

_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_UNIT_MS = MappingProxyType({"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1})


def _check_hostname(value: str) -> str:
    if value == "*":
        raise ValueError("a Gateway API hostname may not be '*' alone; leave it out for any")
    return check_host(value)


Hostname = Annotated[str, AfterValidator(_check_hostname)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253)]


def _check_duration(value: str) -> str:
    # GEP-2257: 1 to 4 parts of up to 5 digits with h, m, s or ms ("1h30m", "500ms", "0s")
    if not _DURATION.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Gateway API duration (like 10s, 500ms or 1h30m: numbers "
            "with h, m, s or ms)"
        )
    return value


GatewayDuration = Annotated[str, AfterValidator(_check_duration)]


def duration_ms(value: str) -> int:
    """Milliseconds of a checked Gateway API duration."""
    return sum(int(n) * _UNIT_MS[unit] for n, unit in re.findall(r"([0-9]+)(ms|h|m|s)", value))


class ParentReference(ApiModel):
    """Where a route attaches: a Gateway (default) or, for GAMMA, a Service (group "")."""

    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"
    namespace: DnsLabel | None = None
    name: ObjectName
    section_name: str | None = None
    port: Port | None = None

    @property
    def is_service(self) -> bool:
        return self.group in ("", "core") and self.kind == "Service"

    def describe(self, route_namespace: str) -> str:
        where = f"{self.namespace or route_namespace}/{self.name}"
        extra = f" section {self.section_name}" if self.section_name else ""
        extra += f" port {self.port}" if self.port else ""
        return f"{self.kind} {where}{extra}"


class BackendObjectReference(ApiModel):
    """A Service (default), or Istio's `networking.istio.io` Hostname (a mesh host by name)."""

    group: str = ""
    kind: str = "Service"
    name: ObjectName
    namespace: DnsLabel | None = None
    port: Port | None = None


class BackendRef(BackendObjectReference):
    weight: Annotated[Int, Field(ge=0, le=1_000_000)] = 1


class SecretObjectReference(ApiModel):
    group: str = ""
    kind: str = "Secret"
    name: ObjectName
    namespace: DnsLabel | None = None
