"""Istio's standard metrics from every proxy, made by Envoy itself (`envoy.access_loggers.stats`).

Each HTTP connection manager gets one stats access logger: at the end of every request it adds
to `istio.requests_total` and records `istio.request_duration_milliseconds`,
`istio.request_bytes` and `istio.response_bytes` (histograms with Envoy's default buckets,
which are Istio's), tagged with the labels of telemetry_labels.py. TCP proxies get two: one at
connection open (`istio.tcp_connections_opened_total`) and one at close (closed, sent and
received bytes). Envoy prints them as `envoy_istio_*`; the metrics port serves them as
`istio_*` (agent/metricsport.py).

Cardinality is capped per logger: past `MAX_SERIES` label sets a new one is dropped by Envoy
(its counters and histograms are never created), so a flood of distinct callers or response
codes cannot grow a proxy's memory without bound.

The python protos (xds-protos) predate Envoy 1.40's `stats_scope` field (number 6, which
replaces the deprecated `stat_prefix` and carries the caps), so it is appended in wire form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.data.accesslog.v3 import accesslog_pb2 as accesslog_data_pb2
from envoy.extensions.access_loggers.stats.v3 import stats_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2

from shoal.generate import protowire, telemetry_peer
from shoal.generate.telemetry_labels import (
    HTTP_LABELS,
    STATS_PREFIX,
    TCP_LABELS,
    inbound_labels,
    outbound_labels,
)
from shoal.model import Proxy

STATS_LOGGER = "envoy.access_loggers.stats"
_CONFIG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config"
# label sets per logger (one logger per listener chain): counters, and 3x histograms
MAX_SERIES = 1000
_HISTOGRAMS_PER_SERIES = 3

_Unit = stats_pb2.Config.Histogram.Unit


def _scope(max_counters: int, max_histograms: int) -> bytes:
    """`envoy.type.v3.Scope` in wire form (fields in number order, as protobuf writes)."""

    def uint32_value(number: int, value: int) -> bytes:
        return protowire.field(number, b"\x08" + protowire.varint(value))

    return (
        uint32_value(1, max_counters)
        + uint32_value(3, max_histograms)
        + protowire.text(5, STATS_PREFIX)
    )


def _stat(name: str, labels: Mapping[str, str], names: Sequence[str]) -> stats_pb2.Config.Stat:
    return stats_pb2.Config.Stat(
        name=name,
        tags=[stats_pb2.Config.Tag(name=n, value_format=labels[n]) for n in names],
    )


def _logger(config: stats_pb2.Config, max_counters: int, max_histograms: int) -> any_pb2.Any:
    # Config's fields 3 (histograms) and 4 (counters) come first, then 6 (stats_scope): the
    # bytes equal what a protobuf with the field would write (deterministic, same version).
    body = config.SerializeToString(deterministic=True)
    body += protowire.field(6, _scope(max_counters, max_histograms))
    return any_pb2.Any(type_url=_CONFIG_TYPE, value=body)


def http_access_log(labels: Mapping[str, str]) -> accesslog_pb2.AccessLog:
    """The stats logger of one HTTP connection manager (request end)."""
    config = stats_pb2.Config(
        counters=[
            stats_pb2.Config.Counter(
                stat=_stat("requests_total", labels, HTTP_LABELS), value_fixed={"value": 1}
            )
        ],
        histograms=[
            stats_pb2.Config.Histogram(
                stat=_stat(name, labels, HTTP_LABELS), unit=unit, value_format=value
            )
            for name, unit, value in (
                ("request_duration_milliseconds", _Unit.Milliseconds, "%DURATION%"),
                ("request_bytes", _Unit.Bytes, "%DOWNSTREAM_WIRE_BYTES_RECEIVED%"),
                ("response_bytes", _Unit.Bytes, "%DOWNSTREAM_WIRE_BYTES_SENT%"),
            )
        ],
    )
    return accesslog_pb2.AccessLog(
        name=STATS_LOGGER,
        typed_config=_logger(config, MAX_SERIES, MAX_SERIES * _HISTOGRAMS_PER_SERIES),
    )


def outbound_access_logs(proxy: Proxy) -> list[accesslog_pb2.AccessLog]:
    """For a proxy's outbound (client-side) HTTP listener, and a gateway's."""
    return [http_access_log(outbound_labels(proxy))]


def inbound_access_logs(proxy: Proxy, *, mtls: bool) -> list[accesslog_pb2.AccessLog]:
    """For one filter chain of a sidecar's inbound (server-side) listener."""
    return [http_access_log(inbound_labels(proxy, mtls=mtls))]


def _of_type(kind: int) -> accesslog_pb2.AccessLogFilter:
    return accesslog_pb2.AccessLogFilter(log_type_filter=accesslog_pb2.LogTypeFilter(types=[kind]))


def tcp_access_logs(proxy: Proxy) -> list[accesslog_pb2.AccessLog]:
    """For a `tcp_proxy` of a gateway (`reporter="source"`): opened at connect, the rest at
    close. Bytes are counted once, at close (Istio also reports every 5 s while open)."""
    labels = dict(outbound_labels(proxy), request_protocol="tcp")
    opened = stats_pb2.Config(
        counters=[
            stats_pb2.Config.Counter(
                stat=_stat("tcp_connections_opened_total", labels, TCP_LABELS),
                value_fixed={"value": 1},
            )
        ]
    )
    closed = stats_pb2.Config(
        counters=[
            stats_pb2.Config.Counter(
                stat=_stat("tcp_connections_closed_total", labels, TCP_LABELS),
                value_fixed={"value": 1},
            ),
            stats_pb2.Config.Counter(
                stat=_stat("tcp_sent_bytes_total", labels, TCP_LABELS), value_format="%BYTES_SENT%"
            ),
            stats_pb2.Config.Counter(
                stat=_stat("tcp_received_bytes_total", labels, TCP_LABELS),
                value_format="%BYTES_RECEIVED%",
            ),
        ]
    )
    kinds = accesslog_data_pb2.AccessLogType
    return [
        accesslog_pb2.AccessLog(
            name=STATS_LOGGER,
            filter=_of_type(kinds.TcpUpstreamConnected),
            typed_config=_logger(opened, MAX_SERIES, 0),
        ),
        accesslog_pb2.AccessLog(
            name=STATS_LOGGER,
            filter=_of_type(kinds.TcpConnectionEnd),
            typed_config=_logger(closed, 3 * MAX_SERIES, 0),
        ),
    ]


def instrument_outbound(hcm: hcm_pb2.HttpConnectionManager, proxy: Proxy) -> None:
    """A client-side HCM (sidecar outbound, gateway): states who calls, reports as source."""
    _before_router(hcm, telemetry_peer.outbound_filter(proxy))
    hcm.access_log.extend(outbound_access_logs(proxy))


def instrument_inbound(hcm: hcm_pb2.HttpConnectionManager, proxy: Proxy, *, mtls: bool) -> None:
    """A server-side HCM, for its mTLS or its plaintext filter chain; replaces what an earlier
    call put there (the mTLS chain starts as a copy of the plaintext one)."""
    kept = [f for f in hcm.http_filters if f.name != telemetry_peer.FILTER_NAME]
    del hcm.http_filters[:]
    hcm.http_filters.extend(kept)
    _before_router(hcm, telemetry_peer.inbound_filter(mtls=mtls))
    others = [a for a in hcm.access_log if a.name != STATS_LOGGER]
    del hcm.access_log[:]
    hcm.access_log.extend([*others, *inbound_access_logs(proxy, mtls=mtls)])


def instrument_tcp(tcp: tcp_proxy_pb2.TcpProxy, proxy: Proxy) -> None:
    tcp.access_log.extend(tcp_access_logs(proxy))
    # the "opened" logger runs when the upstream connection is up
    tcp.access_log_options.flush_access_log_on_connected = True


def _before_router(hcm: hcm_pb2.HttpConnectionManager, added: hcm_pb2.HttpFilter) -> None:
    # just before the router (always last): after security filters, before the app sees it
    filters = list(hcm.http_filters)
    del hcm.http_filters[:]
    hcm.http_filters.extend([*filters[:-1], added, *filters[-1:]])
