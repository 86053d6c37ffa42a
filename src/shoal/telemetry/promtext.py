"""Prometheus text exposition, parsed into flat samples (prometheus_client's own parser)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    """One line of the exposition: a series and its value."""

    name: str
    labels: Mapping[str, str]
    value: float

    def get(self, label: str) -> str:
        return self.labels.get(label, "")


def parse(text: str) -> list[Sample]:
    """Every sample of `text`; raises ValueError if it is not Prometheus text."""
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def matching(samples: Iterable[Sample], name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
