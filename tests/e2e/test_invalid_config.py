"""Invalid config is refused with file, line and field, and the mesh keeps its last good config.

Every bad VirtualService below would move traffic to v2 if shoal accepted it, so "requests keep
landing on v1" shows the bad file was really left out, not merely reported. No NACK may follow:
shoal must catch these before Envoy sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from harness.configdir import line_of
from harness.load import fire
from harness.mesh import HOST, VS_FILE, Mesh, virtual_service
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


@dataclass(frozen=True)
class Bad:
    text: str
    lines: tuple[int, int]  # the error's line must fall in this range (inclusive)
    # Words of which the error's field must contain one (empty: a YAML syntax error, no field).
    fields: tuple[str, ...]


def _malformed() -> Bad:
    good = virtual_service({"v2": 100})
    text = good.replace("subset: v2", "subset: v2: oops")
    n = line_of(text, "v2: oops")
    return Bad(text, (n, n), ())


def _unknown_field() -> Bad:
    good = virtual_service({"v2": 100})
    # A typo of "retries" in the http route entry.
    text = good.replace(
        "  - name: default\n", "  - name: default\n    retriez:\n      attempts: 3\n"
    )
    n = line_of(text, "retriez")
    return Bad(text, (n, n), ("retriez",))


def _weights_not_100() -> Bad:
    text = virtual_service({"v1": 70, "v2": 20})
    # Whether the error points at the route list or a weight is the implementation's call;
    # it must be inside this http entry.
    # The field may name the route list or a weight.
    return Bad(
        text, (line_of(text, "- name: default"), len(text.splitlines())), ("route", "weight")
    )


def _unknown_subset() -> Bad:
    text = virtual_service({"v2": 50, "v9": 50})
    n = line_of(text, "subset: v9")
    return Bad(text, (n, n), ("subset",))


CASES = {
    "malformed-yaml": _malformed,
    "unknown-field": _unknown_field,
    "weights-not-100": _weights_not_100,
    "unknown-subset": _unknown_subset,
}


def _vs_errors(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in status["errors"] if str(e.get("file", "")).endswith(VS_FILE)]


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_config_is_refused(mesh: Mesh, case: str) -> None:
    bad = CASES[case]()
    cp = mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})
    assert cp.config_status()["errors"] == []

    mesh.config.write(VS_FILE, bad.text)

    errors = wait_until(
        lambda: _vs_errors(cp.config_status()),
        5,
        what=f"an error for {VS_FILE} in /debug/config",
        describe=cp.describe,
    )
    error = errors[0]
    low, high = bad.lines
    assert low <= int(error["line"]) <= high, (bad.lines, errors)
    if bad.fields:
        assert any(word in str(error["field"]) for word in bad.fields), errors
        # The contract leaves open whether "name" carries the namespace, as stderr does.
        assert error["kind"] == "VirtualService", errors
        assert error["name"] in {"reviews", "default/reviews"}, errors
    assert error["message"], errors

    # The same error on stderr as "FILE:LINE: Kind ns/name: field: message".
    line_re = rf"{re.escape(VS_FILE)}:{int(error['line'])}: "
    if bad.fields:
        line_re += rf"VirtualService default/reviews: {re.escape(str(error['field']))}: "
    wait_until(
        lambda: re.search(line_re, cp.stderr_text()),
        3,
        what=f"stderr line matching {line_re!r}",
        describe=cp.describe,
    )

    # Last good config still routes, now and after shoal has had time to (not) push.
    for _ in range(2):
        counts = fire(sidecar.outbound_port, HOST, 50)
        assert counts == {"status:200": 50, "v1": 50}, counts
    mesh.synced()
    for proxy in cp.syncz():
        for type_url, status in proxy["types"].items():
            assert status["nack"] is None, (type_url, proxy)
    stats = sidecar.envoy.stats()
    assert stats["cluster_manager.cds.update_rejected"] == 0
    assert stats["listener_manager.lds.update_rejected"] == 0

    # Fixing the file clears the error and the fix applies: the bad text was the only blocker.
    mesh.config.write(VS_FILE, virtual_service({"v2": 100}))
    mesh.wait_routes(sidecar, {"v2"}, timeout=5)
    assert _vs_errors(cp.config_status()) == []
