"""OpenTelemetry collectors for tests: the real OTLP/gRPC TraceService and LogsService
(opentelemetry-proto's messages and service definitions) on 127.0.0.1, keeping every span or
log record they are sent."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from harness.ports import free_port


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    kind: int
    status_code: int
    attributes: dict[str, str]


def _field_2(resource_spans: Any) -> list[Any]:
    # xds-protos ships an older copy of these modules into the same package directory, and the
    # one pip installs last wins: there the list is ``instrumentation_library_spans``, later
    # ``scope_spans``. Both are field 2 on the wire, so the collector reads it by number.
    field = resource_spans.DESCRIPTOR.fields_by_number[2]
    return list(getattr(resource_spans, field.name))


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: list[Span], lock: threading.Lock) -> None:
        self.sink = sink
        self.lock = lock

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        spans = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in _field_2(resource_spans):
                for s in scope.spans:
                    attributes = {
                        a.key: a.value.string_value or str(a.value.int_value) for a in s.attributes
                    }
                    spans.append(
                        Span(
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            name=s.name,
                            service=service,
                            kind=s.kind,
                            status_code=s.status.code,
                            attributes=attributes,
                        )
                    )
        with self.lock:
            self.sink.extend(spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class Collector:
    def __init__(self) -> None:
        self.port = free_port()
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._spans, self._lock), self._server
        )
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    def start(self) -> Collector:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)


@dataclass(frozen=True)
class LogRecord:
    resource: dict[str, str]  # the resource's attributes (Envoy's: `log_name`, node, ...)
    body: str
    attributes: dict[str, str]


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink: list[LogRecord], lock: threading.Lock) -> None:
        self.sink = sink
        self.lock = lock

    def Export(
        self, request: logs_service_pb2.ExportLogsServiceRequest, context: object
    ) -> logs_service_pb2.ExportLogsServiceResponse:
        records = []
        for resource_logs in request.resource_logs:
            # field 2: `scope_logs`, or `instrumentation_library_logs` in xds-protos' old copy
            resource = {a.key: a.value.string_value for a in resource_logs.resource.attributes}
            for scope in _field_2(resource_logs):
                for r in getattr(scope, scope.DESCRIPTOR.fields_by_number[2].name):
                    attributes = {a.key: a.value.string_value for a in r.attributes}
                    records.append(LogRecord(resource, r.body.string_value, attributes))
        with self.lock:
            self.sink.extend(records)
        return logs_service_pb2.ExportLogsServiceResponse()


class LogsCollector:
    """The real OTLP/gRPC LogsService on 127.0.0.1, keeping every log record it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self._records: list[LogRecord] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
            _LogsService(self._records, self._lock), self._server
        )
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    def start(self) -> LogsCollector:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)

    def records(self) -> list[LogRecord]:
        with self._lock:
            return list(self._records)
