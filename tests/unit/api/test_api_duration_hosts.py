"""Durations and host-name resolution."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shoal.api import Duration, format_duration, fqdn, parse_duration, short_names


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("0.5s", 0.5),
        ("100ms", 0.1),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("2.5s", 2.5),
        ("250us", 0.00025),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "-1s", "1 s", "1s2", "1.5.2s", "ms"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number with a unit"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**16))
def test_duration_round_trip(nanoseconds: int) -> None:
    # Durations have nanosecond resolution, as in protobuf and Envoy.
    seconds = nanoseconds / 1e9
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_duration_components_add_up(h: int, m: int, s: int, ms: int) -> None:
    text = f"{h}h{m}m{s}s{ms}ms"
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


class _Timeout(BaseModel):
    timeout: Duration


def test_duration_field_validates_strings_and_dumps_them_back() -> None:
    model = _Timeout.model_validate({"timeout": "1.5s"})
    assert model.timeout == 1.5
    assert model.model_dump() == {"timeout": "1.5s"}
    with pytest.raises(ValidationError, match="expected a duration string"):
        _Timeout.model_validate({"timeout": 5})


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("reviews", "reviews.shop.svc.cluster.local"),
        ("reviews.bar", "reviews.bar.svc.cluster.local"),
        ("reviews.bar.svc", "reviews.bar.svc.cluster.local"),
        ("reviews.bar.svc.cluster.local", "reviews.bar.svc.cluster.local"),
        ("www.example.com", "www.example.com"),
        ("*.example.com", "*.example.com"),
        ("*", "*"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_fqdn(host: str, expected: str) -> None:
    assert fqdn(host, "shop") == expected


def test_fqdn_with_known_namespaces_leaves_external_two_label_names() -> None:
    assert fqdn("httpbin.org", "shop", namespaces={"shop"}) == "httpbin.org"
    assert fqdn("reviews.shop", "x", namespaces={"shop"}) == "reviews.shop.svc.cluster.local"


def test_short_names() -> None:
    assert short_names("reviews.shop.svc.cluster.local") == [
        "reviews.shop.svc.cluster.local",
        "reviews.shop.svc",
        "reviews.shop",
        "reviews",
    ]
    assert short_names("httpbin.org") == ["httpbin.org"]


@given(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), st.sampled_from(["a", "shop"]))
def test_every_short_name_resolves_back(service: str, namespace: str) -> None:
    full = fqdn(service, namespace)
    for name in short_names(full):
        assert fqdn(name, namespace) == full
