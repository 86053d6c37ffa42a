"""Hypothesis strategies that draw config fields from their whole type, not only valid values.

`field(good, kind)` is usually a plausible value (`good`) and sometimes anything of the field's
type (`kind`: any string, any integer, any float including NaN and infinities, any duration
text), so a generated document is a valid one with a few fields gone wild: those either get
refused by shoal with a reason, or are accepted and must then be fine for Envoy. Edge values
(type limits, `%`, CR LF, pseudo-headers, huge numbers) are drawn more often than chance would.
Lists get any size from empty to several entries.
"""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import strategies as st

Kind = Literal["text", "int", "float", "duration", "any"]

EDGE_TEXT = [
    "",
    " ",
    "a b",
    "%",
    "50%",
    "%%",
    "%FOO%",
    "%DOWNSTREAM_REMOTE_ADDRESS%",
    "%REQ(x-a)%",
    "\r\n",
    "a\r\nb: c",
    "\t",
    "\x00",
    "\x7f",
    ":path",
    ":authority",
    ":method",
    "host",
    "Host",
    "content-length",
    "x-a",
    "X-Upper",
    "/",
    "//",
    "/a b",
    "/a?b=c",
    "/#x",
    "*",
    "*.example.com",
    "a..b",
    "-a",
    "é",
    "\u2028",
    "\ufeff",
    "a" * 300,
    "x" * 5000,
    "[",
    "(?=a)",
    "a{1001}",
    "a{1000}",
    "\\1",
    ".*",
    "^/api/.*$",
    "/users/[a-z0-9-]{1,64}/orders",
    "1.2.3.4",
    "::1",
    "[::1]:80",
    "a.example:99999",
    "UNAVAILABLE",
    "5xx",
]
EDGE_INT = [0, 1, -1, 100, 101, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, -(2**63)]
EDGE_FLOAT = [0.0, -0.0, 1e-300, 99.9999999, 100.0, 100.0000001, 1e308, float("inf"), float("nan")]
EDGE_DURATION = [
    "0s",
    "1ns",
    "0.5ms",
    "1ms",
    "999us",
    "1s",
    "1.5s",
    "9223372035s",
    "9223372036s",
    "1000000000000s",
    "2562047h",
    "153722867m",
    "1e3s",
    "-1s",
    "1",
    "s",
    "1h30m",
    "9" * 30 + "h",
]


def any_text() -> st.SearchStrategy[str]:
    return st.one_of(st.text(), st.text(st.characters(codec="ascii")), st.sampled_from(EDGE_TEXT))


def any_int() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(), st.sampled_from(EDGE_INT))


def any_float() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(), st.sampled_from(EDGE_FLOAT))


def any_duration() -> st.SearchStrategy[str]:
    number = st.one_of(
        st.integers(min_value=0).map(str),
        st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lambda f: f"{f:f}"),
    )
    unit = st.sampled_from(["h", "m", "s", "ms", "us", "ns"])
    return st.one_of(st.builds(lambda n, u: n + u, number, unit), st.sampled_from(EDGE_DURATION))


def any_value() -> st.SearchStrategy[Any]:
    """Any YAML scalar: a field given the wrong type entirely."""
    return st.one_of(st.none(), st.booleans(), any_int(), any_float(), any_text())


_WHOLE = {
    "text": any_text,
    "int": any_int,
    "float": any_float,
    "duration": any_duration,
    "any": any_value,
}


def field(good: Any, kind: Kind, *, wild: int = 8) -> st.SearchStrategy[Any]:
    """`good` (a strategy or a plain value), or 1 time in `wild` anything of type `kind`."""
    good_s = good if isinstance(good, st.SearchStrategy) else st.just(good)
    whole = _WHOLE[kind]()
    if kind != "any":
        # now and then a value of another type entirely
        whole = st.one_of(whole, whole, whole, any_value())
    return st.integers(0, wild - 1).flatmap(lambda k: whole if k == 0 else good_s)


def some(element: st.SearchStrategy[Any], *, most: int = 3) -> st.SearchStrategy[list[Any]]:
    """A list of any size: usually up to `most`, now and then up to 8 entries."""
    return st.one_of(
        st.lists(element, max_size=most),
        st.lists(element, max_size=most),
        st.lists(element, max_size=8),
    )


def maybe(entries: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping holding any subset of `entries`."""
    return st.fixed_dictionaries({}, optional=entries)
