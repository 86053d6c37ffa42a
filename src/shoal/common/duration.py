"""Durations as Istio writes them ("1s", "100ms", "1h30m") and a pydantic type for them.

Istio's API uses protobuf Durations, but its YAML (and Go's time.ParseDuration, which
users are used to) accepts unit-suffixed sequences; shoal accepts the same and stores
seconds as a float so the generate layer can convert to Envoy's Duration directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS: Mapping[str, float] = MappingProxyType(
    {
        "h": 3600.0,
        "m": 60.0,
        "s": 1.0,
        "ms": 1e-3,
        "us": 1e-6,
        "µs": 1e-6,
        "ns": 1e-9,
    }
)
# The longest duration Envoy holds for every field: protobuf's Duration allows 10,000 years,
# but Envoy converts durations to int64 nanoseconds and refuses 9223372036s and more
# ("Duration out-of-range", measured with Envoy 1.40): about 292 years.
MAX_SECONDS = (2**63 - 1) // 10**9 - 1

# Longer units first so "ms" is not read as "m" followed by a stray "s".
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")


def parse_duration(text: str) -> float:
    """Return the duration `text` in seconds; ValueError explains the expected form."""
    stripped = text.strip()
    pos = 0
    total = 0.0
    while pos < len(stripped):
        match = _PART.match(stripped, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not stripped or pos != len(stripped):
        raise ValueError(
            f"invalid duration {text!r}: expected a number with a unit "
            "(h, m, s, ms, us, ns), e.g. '1.5s', '100ms' or '1h30m'"
        )
    if not total <= MAX_SECONDS:  # also refuses inf from absurdly long digit strings
        raise ValueError(
            f"duration {text!r} is too long: at most {MAX_SECONDS}s (about 292 years), "
            "the range Envoy can hold"
        )
    return total


def format_duration(seconds: float) -> str:
    """Render seconds in the form `parse_duration` reads back (e.g. "1.5s")."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
    # repr gives the shortest text that round-trips exactly; avoid exponent notation.
    text = repr(float(seconds))
    if "e" in text or "E" in text:
        text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text.removesuffix('.0')}s"


def _validate(value: object) -> float:
    if not isinstance(value, str):
        raise ValueError(f"expected a duration string such as '5s', got {value!r}")
    return parse_duration(value)


# A duration field: a string in YAML, float seconds in Python, a string again when dumped.
Duration = Annotated[
    float,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str),
]
