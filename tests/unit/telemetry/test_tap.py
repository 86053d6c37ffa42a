"""The tap stream's documents cut apart however bytes arrive, and turned into events."""

from __future__ import annotations

import json
from typing import Any

from shoal.telemetry.tap import INBOUND, OUTBOUND, TraceSplitter, event, parse_time, principal_of
from shoal.telemetry.top import Top

CALLER = "spiffe://cluster.local/ns/shop/sa/web"


def _trace(path: str = "/a?q=1", status: str = "200", xfcc: str | None = None) -> dict[str, Any]:
    headers = [{"key": ":method", "value": "GET"}, {"key": ":path", "value": path},
               {"key": ":authority", "value": "reviews"}]  # fmt: skip
    if xfcc is not None:
        headers.append({"key": "x-forwarded-client-cert", "value": xfcc})
    return {
        "http_buffered_trace": {
            "request": {"headers": headers, "headers_received_time": "2026-12-03T13:15:56.5Z"},
            "response": {
                "headers": [{"key": ":status", "value": status}],
                "headers_received_time": "2026-12-03T13:15:56.53125Z",
            },
            "downstream_connection": {
                "remote_address": {"socket_address": {"address": "10.0.0.7", "port_value": 4242}}
            },
        }
    }


def test_splitter_cuts_documents_at_any_byte_boundary() -> None:
    docs = [_trace("/é"), _trace("/b"), _trace("/c")]
    data = "\n".join(json.dumps(d, indent=1, ensure_ascii=False) for d in docs).encode()
    for size in (1, 2, 7, 100, len(data)):
        splitter = TraceSplitter()
        out: list[dict[str, Any]] = []
        for i in range(0, len(data), size):
            out += splitter.feed(data[i : i + size])
        assert out == docs, size


def test_inbound_event_takes_the_identity_from_the_certificate_only() -> None:
    xfcc = f"By=spiffe://cluster.local/ns/shop/sa/reviews;Hash=ab;URI={CALLER}"
    e = event(_trace(xfcc=xfcc), proxy="reviews-0", direction=INBOUND, workload="reviews",
              workloads={("shop", "web"): "web-v2"})  # fmt: skip
    assert e is not None
    assert (e.method, e.path, e.status, e.authority) == ("GET", "/a", 200, "reviews")
    assert e.latency_ms is not None and abs(e.latency_ms - 31.25) < 0.01
    assert (e.source_principal, e.source_workload, e.source) == (CALLER, "web-v2", "web-v2")
    assert e.source_address == "10.0.0.7:4242" and e.destination == "reviews"
    plain = event(_trace(), proxy="reviews-0", direction=INBOUND, workload="reviews",
                  workloads={("shop", "web"): "web-v2"})  # fmt: skip
    assert plain is not None and plain.source == "10.0.0.7:4242" and plain.source_principal == ""


def test_outbound_event_and_odd_traces() -> None:
    e = event(_trace(status="503"), proxy="web-0", direction=OUTBOUND, workload="web")
    assert e is not None and (e.source, e.destination, e.success) == ("web", "reviews", False)
    assert event({"socket_buffered_trace": {}}, proxy="p", direction=INBOUND, workload="w") is None
    reset = _trace()
    reset["http_buffered_trace"]["response"] = {}
    e = event(reset, proxy="p", direction=INBOUND, workload="w")
    assert e is not None and (e.status, e.latency_ms, e.success) == (None, None, False)


def test_times_and_principals() -> None:
    t = parse_time("2026-12-03T13:15:56.123456789Z")
    assert t is not None and t.microsecond == 123456
    assert parse_time("yesterday") is None
    assert principal_of("URI=spiffe://a/ns/x/sa/y,By=z;URI=spiffe://a/ns/b/sa/c") == (
        "spiffe://a/ns/b/sa/c"
    )


def test_top_orders_by_count_and_keeps_best_worst_last() -> None:
    top = Top()
    events = [event(_trace(p, s), proxy="r", direction=OUTBOUND, workload="web")
              for p, s in (("/b", "200"), ("/a", "500"), ("/a", "200"), ("/c", "200"))]  # fmt: skip
    top.add(e for e in events if e is not None)
    rows = top.rows()
    assert [(r.path, r.count, r.success) for r in rows] == [("/a", 2, 0.5), ("/b", 1, 1.0),
                                                              ("/c", 1, 1.0)]  # fmt: skip
    assert rows[0].best_ms == rows[0].worst_ms == rows[0].last_ms
    assert top.total == 4 and len(top.rows(1)) == 1
