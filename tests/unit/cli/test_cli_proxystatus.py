"""`shoal proxy-status`: per proxy and xDS type, SYNCED / STALE / NACK / NOT SENT."""

from __future__ import annotations

import json
import re

import pytest

from shoal.cli.main import main
from shoal.cli.proxystatus import NACK, NOT_SENT, STALE, SYNCED, classify, proxy_statuses

from .fakes import json_server, syncz_entry


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"sent": "b-1", "acked": "b-1", "nack": None}, SYNCED),
        ({"sent": "b-2", "acked": "b-1", "nack": None}, STALE),
        ({"sent": "b-2", "acked": None, "nack": None}, STALE),
        # After a NACK sent != acked as well: NACK must win, it is not just slow.
        ({"sent": "b-2", "acked": "b-1", "nack": "Proto constraint validation failed"}, NACK),
        ({"sent": None, "acked": None, "nack": None}, NOT_SENT),
        ({}, NOT_SENT),
        (None, NOT_SENT),
    ],
)
def test_classify(status: dict[str, str | None] | None, expected: str) -> None:
    assert classify(status) == expected


MIXED = [
    syncz_entry(
        "ratings",
        None,
        delta=True,
        types={
            "cds": {"sent": "boot-c2", "acked": "boot-c1", "nack": None},
            "lds": {
                "sent": "boot-l2",
                "acked": "boot-l1",
                "nack": "duplicate listener name",
                "nacks": 2,
                "lag_ms": 1500,
            },
            "eds": {"sent": "boot-e1", "acked": "boot-e1", "nack": None},
        },
    ),
    syncz_entry("productpage", "127.0.0.1:15000"),
]


def test_proxy_statuses() -> None:
    ratings, productpage = proxy_statuses(MIXED)[::-1]
    assert productpage.row() == [
        "productpage.default",
        SYNCED,
        SYNCED,
        SYNCED,
        SYNCED,
        "sotw",
        "abc123",
        "0",
        "0ms",
    ]
    assert ratings.row() == [
        "ratings.default",
        STALE,
        NACK,
        SYNCED,
        NOT_SENT,
        "delta",
        "c1",
        "2",
        "1500ms",
    ]
    assert ratings.nacks == (("lds", "duplicate listener name"),)


def test_table_and_nack_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with json_server({"/debug/syncz": MIXED}) as address:
        assert main(["proxy-status", "--control-plane", f"http://{address}"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAME", "CDS", "LDS", "EDS", "RDS", "MODE", "VERSION", "NACKS", "LAG"
    ]  # fmt: skip
    assert lines[1].split() == ["productpage.default", *[SYNCED] * 4, "sotw", "abc123", "0", "0ms"]
    # Not a TTY: plain columns, one proxy per line, no colour codes or box characters.
    assert re.split(r"\s{2,}", lines[2]) == [
        "ratings.default",
        STALE,
        NACK,
        SYNCED,
        NOT_SENT,
        "delta",
        "c1",
        "2",
        "1500ms",
    ]
    assert not any("\x1b" in line or "─" in line for line in lines)
    assert lines[3:] == [
        "",
        "Rejected by Envoy (NACK):",
        "  ratings.default LDS: duplicate listener name",
    ]


HEALED = [
    syncz_entry(
        "reviews",
        None,
        types={
            t: {
                "sent": "boot-2",
                "acked": "boot-2",
                "nack": None,
                "last_nack": {"version": "boot-bad", "error": "bad cluster", "at": 1.7e9}
                if t == "cds"
                else None,
                "nacks": 1 if t == "cds" else 0,
            }
            for t in ("cds", "eds", "lds", "rds")
        },
    )
]


def test_an_earlier_nack_is_shown_as_history_not_as_the_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (status,) = proxy_statuses(HEALED)
    assert status.states == dict.fromkeys(("cds", "lds", "eds", "rds"), SYNCED)
    assert status.nacks == ()
    with json_server({"/debug/syncz": HEALED}) as address:
        assert main(["proxy-status", "--control-plane", f"http://{address}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:5] == ["reviews.default", *[SYNCED] * 4]
    assert "Rejected by Envoy (NACK):" not in lines
    assert lines[2:4] == ["", "Rejected earlier, accepted since (last NACK):"]
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"  reviews\.default CDS at {when}: bad cluster", lines[4]), lines


def test_json_is_the_raw_syncz(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with json_server({"/debug/syncz": MIXED}) as address:
        # The URL from the environment, without a scheme, as users type it.
        monkeypatch.setenv("SHOAL_CONTROL_PLANE", address)
        assert main(["proxy-status", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == MIXED


def test_no_proxies(capsys: pytest.CaptureFixture[str]) -> None:
    with json_server({"/debug/syncz": []}) as address:
        assert main(["proxy-status", "--control-plane", address]) == 0
    assert "no proxies are connected" in capsys.readouterr().out


def test_unreachable_control_plane_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    with json_server({}) as address:
        pass  # closed again: nothing listens on this port now
    assert main(["proxy-status", "--control-plane", f"http://{address}"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the control plane at http://{address}/debug/syncz" in err
    assert "--control-plane" in err
