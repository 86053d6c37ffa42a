"""The control plane's own metrics beyond xDS (xds/metrics.py): config errors, certificates.

Read at scrape time from the live objects (a custom collector), so nothing has to remember to
update a gauge: `shoal_config_errors` is the number of config errors in force now, by kind;
`shoal_ca_certificates_issued_total` counts certificates the CA signed, and
`shoal_ca_csr_refused_total` the requests it refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class ControlPlaneCollector(Collector):
    def __init__(
        self,
        errors: Callable[[], Iterable[str]],
        issued: Callable[[], int] | None = None,
        refused: Callable[[], int] | None = None,
    ) -> None:
        """`errors`: the kind of every config error in force; `issued`/`refused`: CA counts
        (None: not a secure control plane)."""
        self._errors = errors
        self._issued = issued
        self._refused = refused

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "shoal_config_errors",
            "Config errors in force (the resource keeps its last good version), by kind",
            labels=["kind"],
        )
        for kind, count in sorted(Counter(self._errors()).items()):
            errors.add_metric([kind or "unknown"], count)
        yield errors
        if self._issued is not None:
            yield CounterMetricFamily(
                "shoal_ca_certificates_issued",
                "Workload certificates the CA signed",
                value=self._issued(),
            )
        if self._refused is not None:
            yield CounterMetricFamily(
                "shoal_ca_csr_refused",
                "Certificate requests the CA refused (bad token, CSR or identity)",
                value=self._refused(),
            )


def register(registry: CollectorRegistry, collector: ControlPlaneCollector) -> None:
    registry.register(collector)
