"""`MeshConfig` (shoal.dev/v1alpha1): mesh-wide defaults, the part of Istio's MeshConfig shoal uses.

Istio keeps these in the `istio` ConfigMap; shoal reads them from a config kind so they live
beside the rest of the YAML and are watched like it. Field names are Istio's
(istio.mesh.v1alpha1.MeshConfig):

* `defaultHttpRetryPolicy` — the retry policy of every HTTP route whose VirtualService sets
  no `retries` (and of routes no VirtualService covers). Absent: Istio's built-in default
  (2 attempts on connect-failure, refused-stream, unavailable, cancelled and 503, on another
  host). `attempts: 0` turns default retries off.
* `defaultServiceExportTo` — where services whose ServiceEntry sets no `exportTo` are visible:
  `["*"]` (absent: Istio's default, everywhere), `["."]` (only their own namespace), `["~"]`
  (nowhere) or namespace names. A mesh-wide scoping default: with `["."]` a sidecar gets
  config for its own namespace's services (and those exported to it) only, so an edit in one
  namespace pushes to that namespace's proxies alone.
* `skipEmptyDestinations` (shoal's own, default `true`) — a destination of a weighted route
  (two or more destinations with weight) whose cluster has no endpoint gets no traffic: its
  weight goes to the route's destinations that have endpoints, until its first endpoint has
  been sent to the caller (make before break while a mesh starts or scales; the route shows
  the destination with weight 0). When every destination is empty the weights stay and the
  caller answers 503, as in Istio. `false`: Istio's behaviour (the empty destination's share
  answers 503).

* `accessLogFile` — where every sidecar and gateway writes an access log line per request or
  TCP connection: `/dev/stdout` (the agent's output; `shoal up` shows it per replica) or a
  file path. Empty (default): no access log (Telemetry `accessLogging` can turn it on, see
  api/telemetry.py). `accessLogEncoding`: `TEXT` (Istio's default format, or
  `accessLogFormat`) or `JSON` (Istio's default fields).

* `extensionProviders` — tracing backends by name, as Istio: `opentelemetry: {service, port}`
  (OTLP/gRPC, W3C `traceparent`) or `zipkin: {service, port}` (Zipkin v2 JSON, B3 and W3C
  accepted and injected); `defaultProviders.tracing` names the one used when no Telemetry
  says otherwise (with Istio's default sampling, 1 %). Access log backends:
  `envoyOtelAls: {service, port, logName, logFormat: {text, labels}}` (OpenTelemetry log
  records over OTLP/gRPC, the body Istio's default text format unless `logFormat.text`, the
  `labels` as attributes), named by Telemetry `accessLogging[].providers`.

One MeshConfig per mesh; if several exist the first in namespace/name order wins.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shoal.api.base import ApiModel, ExportTarget
from shoal.api.logformat import check_log_format
from shoal.api.routepolicies import HTTPRetry


class TracingBackend(ApiModel):
    service: str  # host name or address of the collector
    port: Annotated[int, Field(ge=1, le=65535, strict=True)]


class OtelLogFormat(ApiModel):
    text: str = ""  # the log record's body (Istio's default text format if empty)
    labels: dict[str, str] = Field(default_factory=dict)  # attributes, format strings

    @field_validator("text")
    @classmethod
    def _format(cls, value: str) -> str:
        return check_log_format(value) if value else value


class OtelLogBackend(TracingBackend):
    """Istio's `envoyOtelAls`: access log records sent over OTLP/gRPC (LogsService)."""

    log_name: str = ""
    log_format: OtelLogFormat = Field(default_factory=OtelLogFormat)


class ExtensionProvider(ApiModel):
    name: str
    opentelemetry: TracingBackend | None = None
    zipkin: TracingBackend | None = None
    envoy_otel_als: OtelLogBackend | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ExtensionProvider:
        kinds = (self.opentelemetry, self.zipkin, self.envoy_otel_als)
        if sum(k is not None for k in kinds) != 1:
            raise ValueError(
                "an extension provider needs exactly one of opentelemetry, zipkin, envoyOtelAls"
            )
        return self

    @property
    def backend(self) -> TracingBackend:
        found = self.opentelemetry or self.zipkin or self.envoy_otel_als
        assert found is not None
        return found

    @property
    def tracer(self) -> bool:
        return self.envoy_otel_als is None


class DefaultProviders(ApiModel):
    tracing: list[str] = Field(default_factory=list)


class MeshConfigSpec(ApiModel):
    default_http_retry_policy: HTTPRetry | None = None
    default_service_export_to: list[ExportTarget] = Field(default_factory=list)
    skip_empty_destinations: bool = True
    access_log_file: str = ""
    access_log_encoding: Literal["TEXT", "JSON"] = "TEXT"
    access_log_format: str = ""
    extension_providers: list[ExtensionProvider] = Field(default_factory=list)
    default_providers: DefaultProviders = Field(default_factory=DefaultProviders)

    @model_validator(mode="after")
    def _providers_known(self) -> MeshConfigSpec:
        names = [p.name for p in self.extension_providers]
        if len(set(names)) != len(names):
            raise ValueError("extensionProviders names must be unique")
        for name in self.default_providers.tracing:
            found = self.provider(name)
            if found is None or not found.tracer:
                raise ValueError(f"defaultProviders.tracing: no tracing provider {name!r}")
        return self

    def provider(self, name: str) -> ExtensionProvider | None:
        return next((p for p in self.extension_providers if p.name == name), None)

    @field_validator("access_log_format")
    @classmethod
    def _format(cls, value: str) -> str:
        return check_log_format(value) if value else value

    @field_validator("access_log_file")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path (or /dev/stdout)")
        return value
