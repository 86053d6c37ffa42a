"""Prometheus metrics of the xDS server (served on the control plane's `/metrics`).

Names follow Prometheus conventions under `shoal_`; each control plane has its own registry so
several can live in one process (tests) without clashing.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shoal.generate import SHORT_NAMES

_CONVERGENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class XdsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connected = Gauge(
            "shoal_xds_connected_proxies", "Proxies with an open ADS stream", registry=r
        )
        self.pushes = Counter(
            "shoal_xds_pushes_total",
            "Responses sent, by xDS type and what triggered them (config change or request)",
            ["type", "trigger"],
            registry=r,
        )
        self.resources_sent = Counter(
            "shoal_xds_resources_sent_total", "Resources sent, by xDS type", ["type"], registry=r
        )
        self.bytes_sent = Counter(
            "shoal_xds_bytes_sent_total", "Response bytes sent, by xDS type", ["type"], registry=r
        )
        self.nacks = Counter(
            "shoal_xds_nacks_total", "NACKs received, by xDS type", ["type"], registry=r
        )
        self.convergence = Histogram(
            "shoal_xds_convergence_seconds",
            "From a snapshot being ready to a proxy ACKing what it produced, by xDS type",
            ["type"],
            buckets=_CONVERGENCE_BUCKETS,
            registry=r,
        )
        self.generation = Histogram(
            "shoal_snapshot_build_seconds",
            "Reading config, validating and building a snapshot (before any push)",
            buckets=_CONVERGENCE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "shoal_xds_push_queue_depth",
            "Streams with a config change not yet processed",
            registry=r,
        )

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)


def short(type_url: str) -> str:
    return SHORT_NAMES.get(type_url, type_url.rsplit(".", 1)[-1])
