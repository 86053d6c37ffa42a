"""WorkloadGroup (networking.istio.io): the template of the WorkloadEntries its workloads
register themselves as (Istio's auto-registration), and the readiness probe they run.

A workload joining from another host (`shoal agent --workload-group NAME`) becomes a
WorkloadEntry made from `template` (its labels, ports, weight, service account) with the
address the agent advertises; `metadata` holds the labels and annotations that entry gets.
`probe` is run by the agent beside its workload and reported to the control plane: while it
fails, the entry's endpoint is not served. The template has no address (each workload
brings its own), as Istio's validation says.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from shoal.api.base import ApiModel, Int, Port, field_error
from shoal.api.serviceentry import WorkloadEntrySpec

# Istio's defaults (Kubernetes' probe defaults): seconds, and consecutive results
DEFAULT_PERIOD_S = 10
DEFAULT_TIMEOUT_S = 1
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_SUCCESS_THRESHOLD = 1

Seconds = Annotated[Int, Field(ge=0, le=3600)]
Threshold = Annotated[Int, Field(ge=0, le=1000)]


class GroupMeta(ApiModel):
    """Labels and annotations every WorkloadEntry of the group gets."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class WorkloadTemplate(WorkloadEntrySpec):
    """A WorkloadEntry without its address: the registering workload supplies it."""

    address: str = ""

    @field_validator("address")
    @classmethod
    def _has_address(cls, value: str) -> str:
        if value:
            raise ValueError(
                "a WorkloadGroup template has no address: each workload registers its own"
            )
        return value


class HTTPHeader(ApiModel):
    name: str = Field(min_length=1)
    value: str = ""


class HTTPHealthCheck(ApiModel):
    """GET `path` on the workload's `port`; any 2xx or 3xx answer is healthy."""

    path: str = "/"
    port: Port
    host: str = ""
    scheme: str = "HTTP"
    http_headers: list[HTTPHeader] = Field(default_factory=list)

    @field_validator("scheme")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value.upper() not in ("HTTP", "HTTPS"):
            raise ValueError(f"scheme {value!r} must be HTTP or HTTPS")
        return value.upper()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path {value!r} must start with '/'")
        return value


class TCPHealthCheck(ApiModel):
    """A TCP connect to the workload's `port`."""

    host: str = ""
    port: Port


class ExecHealthCheck(ApiModel):
    """A command run beside the workload; exit status 0 is healthy."""

    command: list[str] = Field(min_length=1)


class ReadinessProbe(ApiModel):
    """How the agent tells whether its workload is ready (one method, Kubernetes' timing)."""

    initial_delay_seconds: Seconds = 0
    timeout_seconds: Seconds = DEFAULT_TIMEOUT_S
    period_seconds: Seconds = DEFAULT_PERIOD_S
    success_threshold: Threshold = DEFAULT_SUCCESS_THRESHOLD
    failure_threshold: Threshold = DEFAULT_FAILURE_THRESHOLD
    http_get: HTTPHealthCheck | None = None
    tcp_socket: TCPHealthCheck | None = None
    exec: ExecHealthCheck | None = None

    @model_validator(mode="after")
    def _one_method(self) -> Self:
        given = [
            name
            for name, value in (
                ("httpGet", self.http_get),
                ("tcpSocket", self.tcp_socket),
                ("exec", self.exec),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise field_error(
                "httpGet" if not given else given[1],
                "a probe needs exactly one of httpGet, tcpSocket, exec"
                + (f" (it sets {', '.join(given)})" if given else ""),
            )
        return self


class WorkloadGroupSpec(ApiModel):
    """Istio's `WorkloadGroup` spec."""

    metadata: GroupMeta = Field(default_factory=GroupMeta)
    template: WorkloadTemplate
    probe: ReadinessProbe | None = None
