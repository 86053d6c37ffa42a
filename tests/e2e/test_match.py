"""Header and URI (prefix, exact, regex) matches send requests to the right subset."""

from __future__ import annotations

import pytest

from harness.load import fire
from harness.mesh import HOST, VS_FILE, Mesh, route, virtual_service

pytestmark = pytest.mark.envoy


def _match_entry(name: str, match: str, subset: str) -> str:
    return f"""  - name: {name}
    match:
{match}
{route({subset: 100})}"""


MATCHES = (
    _match_entry("jason", "    - headers:\n        end-user:\n          exact: jason", "v2")
    + _match_entry("prefix", "    - uri:\n        prefix: /api/v3/", "v3")
    + _match_entry("exact", "    - uri:\n        exact: /exact", "v2")
    + _match_entry("regex", "    - uri:\n        regex: /re/[0-9]+", "v3")
)

# (path, headers, expected backend). Each match has a near miss that must fall through to
# the default route, so a match that is too broad (prefix for exact, a partial regex
# match, any header value) is caught.
CASES: list[tuple[str, dict[str, str], str]] = [
    ("/", {"end-user": "jason"}, "v2"),
    ("/", {"end-user": "jasonx"}, "v1"),
    ("/", {}, "v1"),
    ("/api/v3/items", {}, "v3"),
    ("/api/v2/items", {}, "v1"),
    ("/exact", {}, "v2"),
    ("/exact/more", {}, "v1"),
    ("/exactly", {}, "v1"),
    ("/re/123", {}, "v3"),
    ("/re/abc", {}, "v1"),
    ("/re/123x", {}, "v1"),
    # The header match is the first rule: it wins over a URI match further down.
    ("/api/v3/items", {"end-user": "jason"}, "v2"),
]


def test_header_and_path_matches(mesh: Mesh) -> None:
    mesh.start(subsets=("v1", "v2", "v3"))
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})

    mesh.config.write(VS_FILE, virtual_service({"v1": 100}, matches=MATCHES))
    # The last rule changed last: once it routes, the whole VirtualService is in.
    mesh.wait_routes(sidecar, {"v3"}, path="/re/7")

    wrong = []
    for path, headers, expected in CASES:
        counts = fire(sidecar.outbound_port, HOST, 5, path, headers=headers)
        if counts != {"status:200": 5, expected: 5}:
            wrong.append(f"{path} {headers} -> {dict(counts)}, expected {expected}")
    assert not wrong, "\n".join(wrong)
