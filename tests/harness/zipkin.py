"""A Zipkin collector for tests: the Zipkin v2 HTTP API (`POST /api/v2/spans`, a JSON list of
spans, as Envoy's Zipkin tracer sends with `HTTP_JSON`) on 127.0.0.1, keeping every span."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.ports import free_port

PATH = "/api/v2/spans"


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    tags: dict[str, str]


def _span(raw: dict[str, Any]) -> Span:
    return Span(
        trace_id=raw["traceId"],
        span_id=raw["id"],
        parent_id=raw.get("parentId", ""),
        name=raw.get("name", ""),
        kind=raw.get("kind", ""),
        service=raw.get("localEndpoint", {}).get("serviceName", ""),
        tags={k: str(v) for k, v in raw.get("tags", {}).items()},
    )


class Collector:
    """Answers 202 to a well-formed span list, 400 to anything else (and counts those)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._spans: list[Span] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # Envoy keeps its connection to the collector

            def _body(self) -> bytes:
                if "chunked" not in self.headers.get("transfer-encoding", ""):
                    return self.rfile.read(int(self.headers.get("content-length", "0")))
                out = b""  # Envoy streams the span list in chunks
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline().strip():  # trailers, up to the blank line
                    pass
                return out

            def do_POST(self) -> None:
                body = self._body()
                try:
                    if self.path != PATH:
                        raise ValueError(f"path {self.path}")
                    spans = [_span(raw) for raw in json.loads(body)]
                except (ValueError, KeyError, TypeError) as err:
                    with collector._lock:
                        collector.rejected.append(f"{err}: {body[:200]!r}")
                    self.send_response(400)
                else:
                    with collector._lock:
                        collector._spans.extend(spans)
                    self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Collector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)
