"""ServiceEntry (networking.istio.io): services and their endpoints, the mesh's registry
when there is no Kubernetes.

Field names and meaning follow Istio's `ServiceEntry` API; the cross-field rules below
are the ones Istio's validation webhook applies, so a file shoal accepts is one Istio
would accept too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator

from shoal.api.base import ApiModel, ExportTarget, Host, Int, Port, field_error

PROTOCOLS = frozenset(
    {"HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "MONGO", "MYSQL", "REDIS", "UDP"}
)


def _protocol(value: object) -> object:
    # Istio matches protocol names case-insensitively; store the canonical upper case.
    if not isinstance(value, str):
        return value
    upper = value.upper()
    if upper not in PROTOCOLS:
        raise ValueError(
            f"unknown protocol {value!r}; expected one of {', '.join(sorted(PROTOCOLS))}"
        )
    return upper


Protocol = Annotated[str, BeforeValidator(_protocol)]


class ServicePort(ApiModel):
    """A port the service listens on, as callers address it."""

    number: Port
    protocol: Protocol = "HTTP"
    name: str
    target_port: Port | None = None


class WorkloadSelector(ApiModel):
    """Selects workloads (WorkloadEntries, local workloads) by their labels."""

    labels: dict[str, str] = Field(default_factory=dict)


class WorkloadEntrySpec(ApiModel):
    """One workload instance: its address and, optionally, per-service-port targets."""

    address: str = Field("", validate_default=True)
    ports: dict[str, Port] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    weight: Annotated[Int, Field(ge=0, le=2**32 - 1)] | None = None
    service_account: str = ""

    @field_validator("address")
    @classmethod
    def _has_address(cls, value: str) -> str:
        # Istio lets `network` stand in for an address (a workload behind a network's
        # gateway); shoal has no networks, and Envoy refuses an endpoint without an address
        if not value:
            raise ValueError("address is required (an IP address, a host name or unix://PATH)")
        return value


# A canonical IPv4 address, exactly what ipaddress accepts for one (no leading zeros): the
# common case, ~10x cheaper than ipaddress.ip_address (10,000 endpoints in one registry file).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _is_ip_or_unix(address: str) -> bool:
    if _IPV4.fullmatch(address):
        return True
    if address.startswith("unix://"):
        return len(address) > len("unix://")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


class ServiceEntrySpec(ApiModel):
    """A service known to the mesh: its host names, ports and where its endpoints are."""

    hosts: list[Host] = Field(min_length=1)
    addresses: list[str] = Field(default_factory=list)
    ports: list[ServicePort] = Field(default_factory=list)
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] = "MESH_EXTERNAL"
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"] = "NONE"
    endpoints: list[WorkloadEntrySpec] = Field(default_factory=list)
    workload_selector: WorkloadSelector | None = None
    export_to: list[ExportTarget] = Field(default_factory=list)

    @field_validator("addresses")
    @classmethod
    def _addresses_are_ips(cls, value: list[str]) -> list[str]:
        for i, address in enumerate(value):
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise field_error(
                    str(i), f"address {address!r} is not an IP address or CIDR block"
                ) from None
        return value

    @field_validator("ports")
    @classmethod
    def _ports_unique(cls, value: list[ServicePort]) -> list[ServicePort]:
        names: dict[str, int] = {}
        numbers: dict[int, int] = {}
        for i, port in enumerate(value):
            if port.name in names:
                raise field_error(
                    f"{i}.name",
                    f"port name {port.name!r} is already used by ports[{names[port.name]}]",
                )
            if port.number in numbers:
                raise field_error(
                    f"{i}.number",
                    f"port number {port.number} is already used by ports[{numbers[port.number]}]",
                )
            names[port.name] = i
            numbers[port.number] = i
        return value

    @model_validator(mode="after")
    def _endpoints_consistent(self) -> Self:
        if self.endpoints and self.workload_selector is not None:
            raise field_error(
                "workloadSelector",
                "'endpoints' and 'workloadSelector' are mutually exclusive; use one of them",
            )
        if self.resolution == "STATIC":
            if not self.endpoints and self.workload_selector is None:
                raise field_error(
                    "resolution",
                    "STATIC resolution needs 'endpoints' or a 'workloadSelector'",
                )
            for i, endpoint in enumerate(self.endpoints):
                if not _is_ip_or_unix(endpoint.address):
                    raise field_error(
                        f"endpoints.{i}.address",
                        f"with STATIC resolution an endpoint address must be an IP address "
                        f"or a unix:// path, got {endpoint.address!r}",
                    )
        if self.resolution in ("DNS", "DNS_ROUND_ROBIN") and not self.endpoints:
            for i, host in enumerate(self.hosts):
                if host.startswith("*"):
                    raise field_error(
                        f"hosts.{i}",
                        f"wildcard host {host!r} cannot be resolved with DNS; "
                        "list 'endpoints' or use resolution NONE",
                    )
        return self
