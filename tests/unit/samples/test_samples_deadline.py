"""The sample service passes its caller's remaining time on to the calls it makes."""

from __future__ import annotations

from shoal.samples.service import EXPECTED_TIMEOUT, UPSTREAM_TIMEOUT, Deadline


def test_no_deadline_keeps_the_configured_upstream_timeout() -> None:
    deadline = Deadline.from_headers({}, now=100.0)
    assert deadline.limit(2.0, now=100.5) == (2.0, {})
    assert Deadline.from_headers({EXPECTED_TIMEOUT: "junk"}, now=0).at is None


def test_time_left_caps_the_upstream_call_and_travels_in_its_header() -> None:
    deadline = Deadline.from_headers({EXPECTED_TIMEOUT: "1000"}, now=100.0)
    limit, headers = deadline.limit(2.0, now=100.25)
    assert abs(limit - 0.75) < 1e-9 and headers == {UPSTREAM_TIMEOUT: "750"}
    # a longer deadline than our own limit changes nothing
    assert deadline.limit(0.5, now=100.0) == (0.5, {})
    # past the deadline: the smallest limit, never "no limit"
    limit, headers = deadline.limit(2.0, now=102.0)
    assert limit == 0.001 and headers == {UPSTREAM_TIMEOUT: "1"}
