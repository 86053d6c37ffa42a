"""Requests seen by Envoy's tap filter (generate/telemetry_tap.py), as `TapEvent`s.

Pure: the JSON of Envoy's `/tap` admin stream in, events out. The stream is a sequence of
JSON documents (`TraceWrapper`, each an `http_buffered_trace`) with nothing between them but
whitespace; `TraceSplitter` cuts it into documents however the bytes arrive.

Identity comes only from what the connection proved: on a server sidecar's mTLS chain Envoy
writes `x-forwarded-client-cert` from the caller's verified certificate (anything a caller
sent is dropped first), so its `URI=` is the caller's SPIFFE id. The caller's workload is the
one the control plane knows with that namespace and service account (`workloads`), if just
one. (Not the caller sidecar's `x-shoal-peer-workload`: a buffered trace shows the headers as
they were at the end of the request, after the server's filter removed that one.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

INBOUND = "inbound"
OUTBOUND = "outbound"
XFCC = "x-forwarded-client-cert"
_URI = re.compile(r"URI=([^;,]+)")
_SPIFFE = re.compile(r"^spiffe://[^/]+/ns/([^/]+)/sa/([^/]+)$")
# (namespace, service account) -> the workload that holds it
Workloads = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class TapEvent:
    """One request a tapped proxy handled."""

    proxy: str  # the tapped proxy (workload.namespace or node id)
    direction: str  # INBOUND (served by the workload) or OUTBOUND (sent by it)
    time: str  # when the request's headers arrived (ISO 8601, UTC)
    method: str
    authority: str
    path: str  # without the query string
    status: int | None  # None: no response (reset)
    latency_ms: float | None  # request headers to response headers
    source_address: str
    source_principal: str  # verified SPIFFE id of the caller ("" when not proven)
    source_workload: str  # "" when unknown
    destination: str  # inbound: the tapped workload; outbound: the host asked for
    request_id: str

    @property
    def source(self) -> str:
        """The caller as people name it: workload, else its service account (an identity
        several workloads share), else its address."""
        if self.source_workload:
            return self.source_workload
        match = _SPIFFE.match(self.source_principal)
        return f"sa/{match.group(2)}" if match else self.source_address

    @property
    def success(self) -> bool:
        """As Istio's dashboards: answered, and not a 5xx."""
        return self.status is not None and self.status < 500

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "source": self.source}


class TraceSplitter:
    """Cuts the admin stream's concatenated JSON documents apart as bytes arrive."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending = b""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        # a UTF-8 character may be split between two reads: keep an incomplete tail
        data = self._pending + data
        try:
            text = data.decode()
            self._pending = b""
        except UnicodeDecodeError as err:
            text, self._pending = data[: err.start].decode(), data[err.start :]
        self._buffer += text
        out: list[dict[str, Any]] = []
        while True:
            start = len(self._buffer) - len(self._buffer.lstrip())
            if start == len(self._buffer):
                self._buffer = ""
                return out
            try:
                doc, end = self._decoder.raw_decode(self._buffer, start)
            except json.JSONDecodeError:
                self._buffer = self._buffer[start:]
                return out  # incomplete: wait for more
            self._buffer = self._buffer[end:]
            if isinstance(doc, dict):
                out.append(doc)


def _headers(message: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in message.get("headers") or []:
        key = str(h.get("key", "")).lower()
        # values Envoy could not print as UTF-8 come as raw_value (base64): not needed here
        out.setdefault(key, str(h.get("value", "")))
    return out


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 timestamp as protobuf JSON writes it (up to nanoseconds, `Z`)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", text or "")
    if match is None:
        return None
    base = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    micros = int((match.group(2) or "0").ljust(9, "0")[:6])
    return base.replace(microsecond=micros)


def _address(connection: Mapping[str, Any] | None) -> str:
    socket = ((connection or {}).get("remote_address") or {}).get("socket_address") or {}
    host, port = socket.get("address"), socket.get("port_value")
    return f"{host}:{port}" if host else ""


def principal_of(xfcc: str) -> str:
    """The URI SAN of the (last) element Envoy wrote into x-forwarded-client-cert."""
    found = _URI.findall(xfcc)
    return found[-1] if found else ""


def workload_of(principal: str, workloads: Workloads) -> str:
    match = _SPIFFE.match(principal)
    return workloads.get((match.group(1), match.group(2)), "") if match else ""


def event(
    trace: Mapping[str, Any],
    *,
    proxy: str,
    direction: str,
    workload: str,
    workloads: Workloads | None = None,
) -> TapEvent | None:
    """The request in one tapped trace; None for other trace kinds. `workload`: the tapped
    proxy's workload (an inbound request's destination)."""
    body = trace.get("http_buffered_trace")
    if not isinstance(body, Mapping):
        return None
    request, response = body.get("request") or {}, body.get("response") or {}
    req, resp = _headers(request), _headers(response)
    started = parse_time(str(request.get("headers_received_time", "")))
    answered = parse_time(str(response.get("headers_received_time", "")))
    latency = None
    if started is not None and answered is not None:
        latency = max(0.0, (answered - started).total_seconds() * 1000)
    status = resp.get(":status", "")
    inbound = direction == INBOUND
    principal = principal_of(req.get(XFCC, "")) if inbound else ""
    # outbound: the tapped workload sent it
    source_workload = workload_of(principal, workloads or {}) if inbound else workload
    return TapEvent(
        proxy=proxy,
        direction=direction,
        time=started.isoformat() if started else "",
        method=req.get(":method", ""),
        authority=req.get(":authority", ""),
        path=req.get(":path", "").split("?", 1)[0],
        status=int(status) if status.isdigit() else None,
        latency_ms=latency,
        source_address=_address(body.get("downstream_connection")),
        source_principal=principal,
        source_workload=source_workload,
        destination=workload if inbound else req.get(":authority", ""),
        request_id=req.get("x-request-id", ""),
    )
