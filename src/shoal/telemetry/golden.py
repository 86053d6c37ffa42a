"""The golden signals of workloads and services, and the edges between workloads, computed
from the proxies' Istio metrics (two scrapes a window apart, no Prometheus).

Like `linkerd viz stat`: a workload's row is what its own sidecars served
(`reporter="destination"`), a service's row what its callers' sidecars sent to it
(`reporter="source"`). Success is "not a 5xx" (Istio's dashboards); latency quantiles come from
the histogram's bucket increments, interpolated within a bucket the way PromQL's
`histogram_quantile` does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shoal.telemetry.promtext import Sample

REQUESTS = "istio_requests_total"
DURATION_BUCKET = "istio_request_duration_milliseconds_bucket"
TCP_OPENED = "istio_tcp_connections_opened_total"
TCP_CLOSED = "istio_tcp_connections_closed_total"

# (namespace, name): a workload, or a service (name = the service's short name)
Key = tuple[str, str]


@dataclass(frozen=True)
class Stat:
    namespace: str
    name: str
    meshed: int  # replicas with a sidecar
    replicas: int
    requests: float  # in the window
    success: float | None  # fraction, None when idle
    rps: float
    p50: float | None  # ms
    p95: float | None
    p99: float | None
    tcp_connections: int | None  # open now (TCP proxies only)


@dataclass(frozen=True)
class Edge:
    src_namespace: str
    src: str
    dst_namespace: str
    dst: str
    client_id: str  # the caller's SPIFFE id ("" when not mTLS)
    server_id: str  # the callee's verified certificate ("" when not mTLS)
    requests: float

    @property
    def secured(self) -> bool:
        return bool(self.client_id and self.server_id)


def _increase(before: Iterable[Sample], after: Iterable[Sample]) -> list[Sample]:
    """Per series, how much a counter grew (a proxy restart resets it: then all of it)."""
    old = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in before}
    out = []
    for s in after:
        prior = old.get((s.name, tuple(sorted(s.labels.items()))), 0.0)
        grown = s.value - prior if s.value >= prior else s.value
        # zero growth kept: a histogram's empty buckets are its bounds
        out.append(Sample(s.name, s.labels, grown))
    return out


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """PromQL's histogram_quantile over cumulative bucket counts by upper bound."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # in the +Inf bucket: the highest finite bound, as PromQL
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower


def _row_key(s: Sample, by_service: bool) -> Key:
    if by_service:
        return (s.get("destination_service_namespace"), s.get("destination_service_name"))
    return (s.get("destination_workload_namespace"), s.get("destination_workload"))


def stats(
    before: Sequence[Sample],
    after: Sequence[Sample],
    window_s: float,
    replicas: Mapping[Key, tuple[int, int]],
    *,
    by_service: bool = False,
    keep: Callable[[Key], bool] = lambda _k: True,
) -> list[Stat]:
    """One row per workload (or service), `replicas[key]` = (meshed, total) from the control
    plane; rows for every key in `replicas` even when idle."""
    reporter = "source" if by_service else "destination"
    grown = [s for s in _increase(before, after) if s.get("reporter") == reporter]
    requests: dict[Key, float] = defaultdict(float)
    ok: dict[Key, float] = defaultdict(float)
    buckets: dict[Key, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for s in grown:
        key = _row_key(s, by_service)
        if s.name == REQUESTS:
            requests[key] += s.value
            if not s.get("response_code").startswith("5"):
                ok[key] += s.value
        elif s.name == DURATION_BUCKET:
            buckets[key][float(s.get("le"))] += s.value
    tcp: dict[Key, int] = {}
    for s in after:
        if s.get("reporter") == reporter and s.name in (TCP_OPENED, TCP_CLOSED):
            key = _row_key(s, by_service)
            tcp[key] = tcp.get(key, 0) + int(s.value if s.name == TCP_OPENED else -s.value)
    keys = {k for k in (*replicas, *requests) if k[1] and k[1] != "unknown" and keep(k)}
    out = []
    for key in sorted(keys):
        n = requests.get(key, 0.0)
        meshed, total = replicas.get(key, (0, 0))
        b = buckets.get(key, {})
        out.append(
            Stat(
                namespace=key[0],
                name=key[1],
                meshed=meshed,
                replicas=total,
                requests=n,
                success=ok.get(key, 0.0) / n if n else None,
                rps=n / window_s if window_s > 0 else 0.0,
                p50=quantile(0.5, b),
                p95=quantile(0.95, b),
                p99=quantile(0.99, b),
                tcp_connections=tcp.get(key),
            )
        )
    return out


def edges(samples: Iterable[Sample]) -> list[Edge]:
    """Who called whom since the proxies started, from the callers' sidecars, with the
    identities the connection proved (mTLS: the callee's certificate, verified by the caller)."""
    total: dict[tuple[str, str, str, str, str, str], float] = defaultdict(float)
    for s in samples:
        if s.name != REQUESTS or s.get("reporter") != "source":
            continue
        server_id = s.get("destination_principal")
        client_id = s.get("source_principal") if server_id not in ("", "unknown") else ""
        key = (
            s.get("source_workload_namespace"),
            s.get("source_workload"),
            s.get("destination_workload_namespace"),
            s.get("destination_workload"),
            "" if client_id == "unknown" else client_id,
            "" if server_id == "unknown" else server_id,
        )
        total[key] += s.value
    return [Edge(*key, requests=n) for key, n in sorted(total.items())]


# counter growth between two scrapes, for other views over the same series (graph.py)
increase = _increase
