"""Scraping every proxy's metrics port at once (for `shoal stat` and `shoal edges`).

The targets come from the control plane's Prometheus service discovery (discovery.py), so the
CLI finds the same proxies a Prometheus would. Scrapes run in parallel threads (the CLI has no
event loop); a proxy that does not answer is reported, not fatal.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shoal.telemetry.discovery import METRICS_PATH
from shoal.telemetry.promtext import Sample, parse

# a label no real series has: keeps two replicas' identical series apart when merged
PROXY_LABEL = "__proxy__"


@dataclass(frozen=True)
class Target:
    address: str  # host:port
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        path = self.labels.get("__metrics_path__", METRICS_PATH)
        return f"http://{self.address}{path}"


@dataclass(frozen=True)
class Scrape:
    samples: list[Sample]
    errors: dict[str, str]  # address -> why it could not be read


def targets_from_sd(groups: object) -> list[Target]:
    """Targets from an `http_sd` document (what /debug/prometheus_sd answers)."""
    out: list[Target] = []
    for group in groups if isinstance(groups, list) else []:
        labels = {str(k): str(v) for k, v in (group.get("labels") or {}).items()}
        out.extend(Target(str(address), labels) for address in group.get("targets") or [])
    return out


def _one(target: Target, timeout: float) -> list[Sample]:
    with urllib.request.urlopen(target.url, timeout=timeout) as resp:
        text = resp.read().decode()
    return [Sample(s.name, {**s.labels, PROXY_LABEL: target.address}, s.value) for s in parse(text)]


def scrape(targets: Sequence[Target], timeout: float = 5.0) -> Scrape:
    samples: list[Sample] = []
    errors: dict[str, str] = {}
    if not targets:
        return Scrape(samples, errors)
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        futures = {t.address: pool.submit(_one, t, timeout) for t in targets}
        for address, future in futures.items():
            try:
                samples.extend(future.result())
            except (OSError, ValueError, urllib.error.URLError) as err:
                errors[address] = str(err)
    return Scrape(samples, errors)
