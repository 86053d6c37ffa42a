"""Istio's standard metrics from every proxy, made by Envoy itself (`envoy.access_loggers.stats`).

Each HTTP connection manager gets one stats access logger: at the end of every request it adds
to `istio.requests_total` and records `istio.request_duration_milliseconds`,
`istio.request_bytes` and `istio.response_bytes` (histograms with Envoy's default buckets,
which are Istio's), tagged with the labels of telemetry_labels.py, packed into one tag
(shoal.common.packedlabels). TCP proxies get two: one at
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

from shoal.common import packedlabels
from shoal.generate import protowire, telemetry_peer, telemetry_tap, telemetry_tracing
from shoal.generate.telemetry_accesslog import (
    FILE_LOGGER,
    OTEL_LOGGER,
    file_access_logs,
    otel_access_logs,
)
from shoal.generate.telemetry_labels import (
    HTTP_LABELS,
    STATS_PREFIX,
    TCP_LABELS,
    inbound_labels,
    outbound_labels,
)
from shoal.generate.telemetry_policy import (
    CLIENT,
    SERVER,
    MetricsPolicy,
    access_log_policy,
    metrics_policy,
    server_metrics_anywhere,
)
from shoal.model import MeshSnapshot, Proxy

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


def _stat(name: str, labels: Mapping[str, str]) -> stats_pb2.Config.Stat:
    # every label in one packed tag: a tag costs Envoy a format, two symbol encodings and its
    # share of the name join per stat and request (shoal.common.packedlabels)
    stat = stats_pb2.Config.Stat(name=name)
    if labels:
        stat.tags.add(name=packedlabels.TAG, value_format=packedlabels.pack(dict(labels)))
    return stat


def _ordered(labels: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    return {n: labels[n] for n in names}


def _logger(config: stats_pb2.Config, max_counters: int, max_histograms: int) -> any_pb2.Any:
    # Config's fields 3 (histograms) and 4 (counters) come first, then 6 (stats_scope): the
    # bytes equal what a protobuf with the field would write (deterministic, same version).
    body = config.SerializeToString(deterministic=True)
    body += protowire.field(6, _scope(max_counters, max_histograms))
    return any_pb2.Any(type_url=_CONFIG_TYPE, value=body)


_HTTP_HISTOGRAMS = (
    ("request_duration_milliseconds", _Unit.Milliseconds, "%DURATION%"),
    ("request_bytes", _Unit.Bytes, "%DOWNSTREAM_WIRE_BYTES_RECEIVED%"),
    ("response_bytes", _Unit.Bytes, "%DOWNSTREAM_WIRE_BYTES_SENT%"),
)


def http_access_logs(
    labels: Mapping[str, str], policy: MetricsPolicy, side: str, *, max_series: int = MAX_SERIES
) -> list[accesslog_pb2.AccessLog]:
    """The stats logger of one HTTP connection manager (request end), with the metrics and
    labels `policy` (Telemetry) leaves; none when every metric is disabled. At most
    `max_series` label sets (a test lowers it to see Envoy hold the cap)."""
    base = _ordered(labels, HTTP_LABELS)
    counters = [
        stats_pb2.Config.Counter(
            stat=_stat(stat, policy.labels(stat, side, base)), value_fixed={"value": 1}
        )
        for stat in ("requests_total",)
        if policy.enabled(stat, side)
    ]
    histograms = [
        stats_pb2.Config.Histogram(
            stat=_stat(stat, policy.labels(stat, side, base)), unit=unit, value_format=value
        )
        for stat, unit, value in _HTTP_HISTOGRAMS
        if policy.enabled(stat, side)
    ]
    if not counters and not histograms:
        return []
    config = stats_pb2.Config(counters=counters, histograms=histograms)
    return [
        accesslog_pb2.AccessLog(
            name=STATS_LOGGER,
            typed_config=_logger(config, max_series, max_series * _HISTOGRAMS_PER_SERIES),
        )
    ]


def outbound_access_logs(proxy: Proxy, policy: MetricsPolicy) -> list[accesslog_pb2.AccessLog]:
    """For a proxy's outbound (client-side) HTTP listener, and a gateway's."""
    return http_access_logs(outbound_labels(proxy), policy, CLIENT)


def inbound_access_logs(
    proxy: Proxy, policy: MetricsPolicy, *, mtls: bool
) -> list[accesslog_pb2.AccessLog]:
    """For one filter chain of a sidecar's inbound (server-side) listener."""
    return http_access_logs(inbound_labels(proxy, mtls=mtls), policy, SERVER)


def _of_type(kind: int) -> accesslog_pb2.AccessLogFilter:
    return accesslog_pb2.AccessLogFilter(log_type_filter=accesslog_pb2.LogTypeFilter(types=[kind]))


def tcp_access_logs(proxy: Proxy, policy: MetricsPolicy) -> list[accesslog_pb2.AccessLog]:
    """For a `tcp_proxy` of a gateway (`reporter="source"`): opened at connect, the rest at
    close. Bytes are counted once, at close (Istio also reports every 5 s while open)."""
    base = _ordered(dict(outbound_labels(proxy), request_protocol="tcp"), TCP_LABELS)

    def counters(*stats: tuple[str, str | None]) -> list[stats_pb2.Config.Counter]:
        out = []
        for stat, value in stats:
            if not policy.enabled(stat, CLIENT):
                continue
            counter = stats_pb2.Config.Counter(stat=_stat(stat, policy.labels(stat, CLIENT, base)))
            if value is None:
                counter.value_fixed.value = 1
            else:
                counter.value_format = value
            out.append(counter)
        return out

    kinds = accesslog_data_pb2.AccessLogType
    out = []
    for kind, made in (
        (kinds.TcpUpstreamConnected, counters(("tcp_connections_opened_total", None))),
        (
            kinds.TcpConnectionEnd,
            counters(
                ("tcp_connections_closed_total", None),
                ("tcp_sent_bytes_total", "%BYTES_SENT%"),
                ("tcp_received_bytes_total", "%BYTES_RECEIVED%"),
            ),
        ),
    ):
        if made:
            config = stats_pb2.Config(counters=made)
            out.append(
                accesslog_pb2.AccessLog(
                    name=STATS_LOGGER,
                    filter=_of_type(kind),
                    typed_config=_logger(config, len(made) * MAX_SERIES, 0),
                )
            )
    return out


def instrument_outbound(
    hcm: hcm_pb2.HttpConnectionManager, snapshot: MeshSnapshot, proxy: Proxy
) -> None:
    """A client-side HCM (sidecar outbound, gateway): states who calls, reports as source.
    The peer headers only while some server counts metrics, the protocol only while this
    proxy does: with the metrics off mesh-wide, two secure sidecars took 1.68x the Envoy CPU
    per request of a hand-written chain with them, 1.08-1.55x without (overhead_bench.py,
    a loaded shared VM)."""
    policy = metrics_policy(snapshot, proxy)
    if server_metrics_anywhere(snapshot):
        _before_router(hcm, telemetry_peer.outbound_filter(proxy))
    if policy.http_metrics_on(CLIENT):
        _before_router(hcm, telemetry_peer.protocol_filter())
    telemetry_tap.add_tap(hcm, proxy, telemetry_tap.OUTBOUND_TAP)
    hcm.access_log.extend(outbound_access_logs(proxy, policy))
    logs = access_log_policy(snapshot, proxy)
    hcm.access_log.extend([*file_access_logs(logs, CLIENT), *otel_access_logs(logs, CLIENT)])
    telemetry_tracing.apply_tracing(hcm, snapshot, proxy, CLIENT)


def instrument_inbound(
    hcm: hcm_pb2.HttpConnectionManager, snapshot: MeshSnapshot, proxy: Proxy, *, mtls: bool
) -> None:
    """A server-side HCM, for its mTLS or its plaintext filter chain; replaces what an earlier
    call put there (the mTLS chain starts as a copy of the plaintext one)."""
    kept = [f for f in hcm.http_filters if f.name != telemetry_peer.FILTER_NAME]
    del hcm.http_filters[:]
    hcm.http_filters.extend(kept)
    policy = metrics_policy(snapshot, proxy)
    if policy.http_metrics_on(SERVER):  # its labels are all the peer filter is for
        _before_router(hcm, telemetry_peer.inbound_filter(mtls=mtls))
    elif server_metrics_anywhere(snapshot):  # callers still send them: the app must not see
        _before_router(hcm, telemetry_peer.strip_filter())
    telemetry_tap.add_tap(hcm, proxy, telemetry_tap.INBOUND_TAP)
    others = [a for a in hcm.access_log if a.name not in (STATS_LOGGER, FILE_LOGGER, OTEL_LOGGER)]
    del hcm.access_log[:]
    hcm.access_log.extend([*others, *inbound_access_logs(proxy, policy, mtls=mtls)])
    logs = access_log_policy(snapshot, proxy)
    hcm.access_log.extend([*file_access_logs(logs, SERVER), *otel_access_logs(logs, SERVER)])
    hcm.ClearField("tracing")
    telemetry_tracing.apply_tracing(hcm, snapshot, proxy, SERVER)


def instrument_tcp(tcp: tcp_proxy_pb2.TcpProxy, snapshot: MeshSnapshot, proxy: Proxy) -> None:
    tcp.access_log.extend(tcp_access_logs(proxy, metrics_policy(snapshot, proxy)))
    logs = access_log_policy(snapshot, proxy)
    tcp.access_log.extend(file_access_logs(logs, CLIENT, tcp=True))
    tcp.access_log.extend(otel_access_logs(logs, CLIENT, tcp=True))
    # the "opened" logger runs when the upstream connection is up
    tcp.access_log_options.flush_access_log_on_connected = True


def _before_router(hcm: hcm_pb2.HttpConnectionManager, added: hcm_pb2.HttpFilter) -> None:
    # just before the router (always last): after security filters, before the app sees it
    filters = list(hcm.http_filters)
    del hcm.http_filters[:]
    hcm.http_filters.extend([*filters[:-1], added, *filters[-1:]])
