"""Access logs: one line per request (or TCP connection) in Istio's default formats.

Switched on by MeshConfig `accessLogFile` (and per level/side by Telemetry `accessLogging`,
telemetry_policy.py). TEXT is Istio's default text format (or MeshConfig `accessLogFormat`),
JSON Istio's default JSON fields; both through Envoy's file access logger, `/dev/stdout` being
the agent's output, which `shoal up` prints per replica. A MeshConfig `envoyOtelAls` provider
named by Telemetry sends the same lines as OpenTelemetry log records (OTLP/gRPC LogsService)
through Envoy's OpenTelemetry access logger, each to a collector cluster of its own.
"""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as fmt_pb2
from envoy.data.accesslog.v3 import accesslog_pb2 as accesslog_data_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.filters.cel.v3 import cel_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.access_loggers.open_telemetry.v3 import logs_service_pb2 as otel_pb2
from google.protobuf import any_pb2, struct_pb2

from shoal.api.meshconfig import ExtensionProvider
from shoal.generate.prepared import PreparedResource
from shoal.generate.telemetry_policy import CLIENT, SERVER, AccessLogPolicy, access_log_policy
from shoal.generate.telemetry_tracing import cluster_name, collector_cluster
from shoal.model import MeshSnapshot, Proxy

FILE_LOGGER = "envoy.access_loggers.file"
OTEL_LOGGER = "envoy.access_loggers.open_telemetry"
OTEL_LOG_NAME = "otel_envoy_accesslog"
CEL_FILTER = "envoy.access_loggers.extension_filters.cel"  # Istio's default logName

# Istio's default (proxy config `accessLogFormat` unset), field for field
TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)
# Istio's default JSON access log fields
JSON_FIELDS = MappingProxyType(
    {
        "start_time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "protocol": "%PROTOCOL%",
        "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%",
        "response_code_details": "%RESPONSE_CODE_DETAILS%",
        "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
        "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%",
        "duration": "%DURATION%",
        "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
        "user_agent": "%REQ(USER-AGENT)%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "authority": "%REQ(:AUTHORITY)%",
        "upstream_host": "%UPSTREAM_HOST%",
        "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
        "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
        "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
        "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "requested_server_name": "%REQUESTED_SERVER_NAME%",
        "route_name": "%ROUTE_NAME%",
    }
)


def file_access_logs(
    policy: AccessLogPolicy, side: str, *, tcp: bool = False
) -> list[accesslog_pb2.AccessLog]:
    """The file logger for one side's listener (a TCP proxy logs once, at close)."""
    path = policy.path(side)
    if not path:
        return []
    log_format = fmt_pb2.SubstitutionFormatString()
    if policy.encoding == "JSON":
        fields = struct_pb2.Struct()
        fields.update(JSON_FIELDS)
        log_format.json_format.CopyFrom(fields)
    else:
        text = policy.format or TEXT_FORMAT
        log_format.text_format_source.inline_string = text if text.endswith("\n") else text + "\n"
    config = file_pb2.FileAccessLog(path=path, log_format=log_format)
    packed = any_pb2.Any()
    packed.Pack(config)
    out = accesslog_pb2.AccessLog(name=FILE_LOGGER, typed_config=packed)
    _filter(out, policy.filter(side), tcp=tcp)
    return [out]


def _filter(logger: accesslog_pb2.AccessLog, expression: str, *, tcp: bool) -> None:
    """A TCP proxy logs once, at close; Telemetry `filter` is Envoy's CEL filter."""
    parts = []
    if tcp:
        end = accesslog_data_pb2.AccessLogType.TcpConnectionEnd
        parts.append(accesslog_pb2.AccessLogFilter())
        parts[-1].log_type_filter.types.append(end)
    if expression:
        cel = accesslog_pb2.AccessLogFilter()
        cel.extension_filter.name = CEL_FILTER
        cel.extension_filter.typed_config.Pack(cel_pb2.ExpressionFilter(expression=expression))
        parts.append(cel)
    if len(parts) == 1:
        logger.filter.CopyFrom(parts[0])
    elif parts:
        logger.filter.and_filter.filters.extend(parts)


def otel_access_logs(
    policy: AccessLogPolicy, side: str, *, tcp: bool = False
) -> list[accesslog_pb2.AccessLog]:
    """One OpenTelemetry logger per `envoyOtelAls` provider on for this side."""
    out = []
    for provider in policy.otel(side):
        backend = provider.envoy_otel_als
        assert backend is not None
        common = als_pb2.CommonGrpcAccessLogConfig(
            log_name=backend.log_name or OTEL_LOG_NAME,
            grpc_service=grpc_service_pb2.GrpcService(
                envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(
                    cluster_name=cluster_name(provider)
                )
            ),
            transport_api_version=config_source_pb2.V3,
        )
        config = otel_pb2.OpenTelemetryAccessLogConfig(common_config=common)
        config.body.string_value = (backend.log_format.text or TEXT_FORMAT).rstrip("\n")
        for key, value in sorted(backend.log_format.labels.items()):
            attribute = config.attributes.values.add(key=key)
            attribute.value.string_value = value
        packed = any_pb2.Any()
        packed.Pack(config)
        logger = accesslog_pb2.AccessLog(name=OTEL_LOGGER, typed_config=packed)
        _filter(logger, policy.filter(side), tcp=tcp)
        out.append(logger)
    return out


def clusters(snapshot: MeshSnapshot, proxy: Proxy) -> list[PreparedResource]:
    """The collector clusters the proxy's OpenTelemetry access loggers send to."""
    policy = access_log_policy(snapshot, proxy)
    used: dict[str, ExtensionProvider] = {}
    for side in (CLIENT, SERVER):
        for provider in policy.otel(side):
            used[cluster_name(provider)] = provider
    return [collector_cluster(name, p) for name, p in sorted(used.items())]
