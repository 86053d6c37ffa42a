"""Prometheus HTTP service discovery (`http_sd_configs`) for every connected proxy.

The control plane serves `/debug/prometheus_sd`: one target group per proxy that announced a
metrics port (node metadata `PROMETHEUS_PORT`), in the JSON Prometheus's `http_sd` expects
(`[{"targets": ["host:port"], "labels": {...}}]`). Labels follow Istio's Prometheus
conventions for pods (`namespace`, `pod`, ...) and set the metrics path, so a scrape config
needs only the URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

METRICS_PATH = "/stats/prometheus"


@dataclass(frozen=True)
class ProxyTarget:
    """What discovery needs to know of one proxy."""

    node: str
    host: str
    port: int
    namespace: str
    workload: str
    labels: Mapping[str, str]
    kind: str  # "sidecar", "router", "node"


def target_groups(proxies: Iterable[ProxyTarget]) -> list[dict[str, object]]:
    """`http_sd` target groups, one per proxy, in a stable order."""
    out: list[dict[str, object]] = []
    for p in sorted(proxies, key=lambda p: p.node):
        pod = p.node.split("~")[2].rsplit(".", 1)[0] if p.node.count("~") == 3 else p.node
        labels = {
            "__metrics_path__": METRICS_PATH,
            "namespace": p.namespace,
            "pod": pod,
            "workload": p.workload,
            "proxy_type": p.kind,
        }
        for key in ("app", "version"):
            if key in p.labels:
                labels[key] = p.labels[key]
        out.append({"targets": [f"{p.host}:{p.port}"], "labels": labels})
    return out
