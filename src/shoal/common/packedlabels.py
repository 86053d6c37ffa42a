"""How shoal's stats loggers hand Envoy a metric's labels: all in one packed tag.

Envoy 1.40's stats access logger formats every tag of every stat at the end of each request,
encodes each tag's name and value into its symbol table and joins them into the stat's name
(`StatsAccessLog::NameAndTags::tags`): with Istio's 23 labels as 23 tags, four stats per
request cost two sidecars +30..+48 % CPU per request (benchmarks/README.md). One tag whose
value carries every label (`name=value` pieces between `SEPARATOR`s, a single format string
with the same substitutions) is one format, two encodings and a short join per stat; the same
label values make the same packed value, so the series are exactly Istio's.

The metrics port (agent/metricsport.py) unpacks it into the labels when it serves the text.
Both sides import these constants from here (the agent does not load the generator).
"""

from __future__ import annotations

# the one tag name Envoy sees (printed as `shoal_labels="..."` on its admin port)
TAG = "shoal_labels"
# between `name=value` pieces: a control character (ASCII unit separator). shoal's own label
# values never hold one (names, SPIFFE ids, codes, flags); a tag override reading a request
# field that did would split there, and the metrics port keeps the rest with the label before
SEPARATOR = "\x1f"


def pack(labels: dict[str, str]) -> str:
    """One access-log format string printing every label as `name=value`, in order."""
    return SEPARATOR.join(f"{name}={value}" for name, value in labels.items())


def unpack(packed: str) -> dict[str, str]:
    """The labels of a packed tag (its format string or a value Envoy printed), in order."""
    pieces = (piece.partition("=") for piece in packed.split(SEPARATOR) if piece)
    return {name: value for name, _, value in pieces}
