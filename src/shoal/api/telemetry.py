"""`Telemetry` (telemetry.istio.io/v1): which of Istio's standard metrics a workload reports,
and with which labels.

Implemented: `selector`, `metrics[].overrides[]` (`match.metric` / `match.mode`, `disabled`,
`tagOverrides` with `REMOVE` or `UPSERT` of a CEL `value`) and `metrics[].providers` (only
`prometheus`, the one provider shoal has); `accessLogging[]` (`disabled`, `match.mode`,
`providers`: `envoy`, the file MeshConfig `accessLogFile` names, `/dev/stdout` if none, or a
MeshConfig `envoyOtelAls` extension provider: OpenTelemetry log records over OTLP/gRPC).
`tracing[]` (`providers`: an extension provider of MeshConfig, `randomSamplingPercentage`,
`disableSpanReporting`, `match.mode`, `customTags`). `accessLogging[].filter` (a CEL
expression: only what it is true for is logged, Envoy's CEL access log filter).
`targetRef(s)` are valid Istio, not implemented yet (refused as such, see unimplemented.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shoal.api.base import ApiModel, Bool
from shoal.api.cel import check_cel
from shoal.api.httpgrammar import HeaderName
from shoal.api.peerauthentication import WorkloadLabelSelector

MetricName = Literal[
    "ALL_METRICS",
    "REQUEST_COUNT",
    "REQUEST_DURATION",
    "REQUEST_SIZE",
    "RESPONSE_SIZE",
    "TCP_OPENED_CONNECTIONS",
    "TCP_CLOSED_CONNECTIONS",
    "TCP_SENT_BYTES",
    "TCP_RECEIVED_BYTES",
    "GRPC_REQUEST_MESSAGES",
    "GRPC_RESPONSE_MESSAGES",
]
# CLIENT: what a proxy reports for requests it sends (reporter=source); SERVER: receives
WorkloadMode = Literal["CLIENT_AND_SERVER", "CLIENT", "SERVER"]
PROVIDERS = ("prometheus",)


class MetricSelector(ApiModel):
    metric: MetricName = "ALL_METRICS"
    mode: WorkloadMode = "CLIENT_AND_SERVER"


class TagOverride(ApiModel):
    operation: Literal["UPSERT", "REMOVE"] = "UPSERT"
    # a CEL expression over Envoy's request attributes (Envoy's `%CEL()%`)
    value: str = ""

    @model_validator(mode="after")
    def _upsert_has_value(self) -> TagOverride:
        if self.operation == "UPSERT" and not self.value.strip():
            raise ValueError("an UPSERT tag override needs a value (a CEL expression)")
        if "%" in self.value:
            raise ValueError("value must be a CEL expression without '%'")
        if any(ord(c) < 0x20 or c == "\x7f" for c in self.value):
            # it goes into an Envoy format string (%CEL(...)%), which ends at a line break
            raise ValueError("value must be a CEL expression on one line, no control characters")
        if self.operation == "UPSERT":
            check_cel(self.value)  # Envoy refuses the listener for a syntax error
        return self


class MetricsOverrides(ApiModel):
    match: MetricSelector = Field(default_factory=MetricSelector)
    disabled: Bool | None = None
    tag_overrides: dict[str, TagOverride] = Field(default_factory=dict)

    @field_validator("tag_overrides")
    @classmethod
    def _label_names(cls, value: dict[str, TagOverride]) -> dict[str, TagOverride]:
        for name in value:
            if not name.replace("_", "a").isalnum() or name[:1].isdigit():
                raise ValueError(f"tag {name!r} is not a Prometheus label name")
        return value


class ProviderRef(ApiModel):
    name: str

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PROVIDERS:
            # Istio's providers are MeshConfig extensionProviders: valid names shoal lacks
            raise ValueError(
                f"provider {value!r} is not implemented yet; shoal has only {', '.join(PROVIDERS)}"
            )
        return value


class Metrics(ApiModel):
    providers: list[ProviderRef] = Field(default_factory=list)
    overrides: list[MetricsOverrides] = Field(default_factory=list)


class AccessLogProviderRef(ApiModel):
    # `envoy` (the file logger) or a MeshConfig `envoyOtelAls` extension provider (checked
    # when the snapshot is generated, as tracing providers are)
    name: str


class AccessLogMatch(ApiModel):
    mode: WorkloadMode = "CLIENT_AND_SERVER"


class AccessLogFilter(ApiModel):
    # a CEL expression over Envoy's request attributes: only requests it is true for are logged
    expression: str

    @field_validator("expression")
    @classmethod
    def _cel(cls, value: str) -> str:
        check_cel(value)  # Envoy refuses the listener for a syntax error
        return value


class AccessLogging(ApiModel):
    providers: list[AccessLogProviderRef] = Field(default_factory=list)
    match: AccessLogMatch = Field(default_factory=AccessLogMatch)
    disabled: Bool | None = None
    filter: AccessLogFilter | None = None


class TracingProviderRef(ApiModel):
    name: str  # a MeshConfig extension provider (checked when the snapshot is generated)


class LiteralTag(ApiModel):
    value: str


class EnvironmentTag(ApiModel):
    name: str
    default_value: str = ""


class HeaderTag(ApiModel):
    name: HeaderName
    default_value: str = ""


class CustomTag(ApiModel):
    """A span attribute: a literal, an environment variable of the proxy, or a request
    header (Envoy's tracing `custom_tags`)."""

    literal: LiteralTag | None = None
    environment: EnvironmentTag | None = None
    header: HeaderTag | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CustomTag:
        if sum(t is not None for t in (self.literal, self.environment, self.header)) != 1:
            raise ValueError("a custom tag needs exactly one of literal, environment, header")
        return self


class Tracing(ApiModel):
    providers: list[TracingProviderRef] = Field(default_factory=list)
    custom_tags: dict[str, CustomTag] = Field(default_factory=dict)
    match: AccessLogMatch = Field(default_factory=AccessLogMatch)
    random_sampling_percentage: Annotated[float, Field(ge=0, le=100)] | None = None
    disable_span_reporting: Bool | None = None


class TelemetrySpec(ApiModel):
    selector: WorkloadLabelSelector | None = None
    metrics: list[Metrics] = Field(default_factory=list)
    access_logging: list[AccessLogging] = Field(default_factory=list)
    tracing: list[Tracing] = Field(default_factory=list)
