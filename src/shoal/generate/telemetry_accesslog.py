"""Access logs: one line per request (or TCP connection) in Istio's default formats.

Switched on by MeshConfig `accessLogFile` (and per level/side by Telemetry `accessLogging`,
telemetry_policy.py). TEXT is Istio's default text format (or MeshConfig `accessLogFormat`),
JSON Istio's default JSON fields; both through Envoy's file access logger, `/dev/stdout` being
the agent's output, which `shoal up` prints per replica.
"""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as fmt_pb2
from envoy.data.accesslog.v3 import accesslog_pb2 as accesslog_data_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from google.protobuf import any_pb2, struct_pb2

from shoal.generate.telemetry_policy import AccessLogPolicy

FILE_LOGGER = "envoy.access_loggers.file"

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
    if tcp:
        end = accesslog_data_pb2.AccessLogType.TcpConnectionEnd
        out.filter.log_type_filter.types.append(end)
    return [out]
