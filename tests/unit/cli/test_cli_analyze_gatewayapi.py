"""`shoal analyze` on Gateway API files: status conditions of what attached, located errors
with the spec's reasons for what did not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.cli.main import main

FILES = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: edge}]
  rules:
  - backendRefs: [{name: web, port: 80}]
"""


def test_analyze_shows_the_status_of_attached_routes_and_gateways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gw.yaml").write_text(FILES)
    assert main(["analyze", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        "gw.yaml:21: status: HTTPRoute default/shop: spec.parentRefs[0]: parent Gateway "
        "default/edge: Accepted=True (Accepted), ResolvedRefs=True (ResolvedRefs)"
    ) in out
    gateway = [line for line in out if line.startswith("gw.yaml:11: status: Gateway")]
    assert gateway and gateway[0].endswith("; listeners http: 1 route"), out


def test_analyze_reports_an_unresolved_backend_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gw.yaml").write_text(FILES.replace("name: web, port: 80", "name: gone, port: 80"))
    assert main(["analyze", "-o", "json", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(e["line"], e["field"], e["message"].split(":")[0]) for e in report["errors"]] == [
        (23, "spec.rules[0].backendRefs[0].name", "BackendNotFound")
    ]
    # the refused route has no status line; its Gateway shows no route attached
    assert [s["kind"] for s in report["statuses"]] == ["Gateway.gateway.networking.k8s.io"]
    assert report["statuses"][0]["message"].endswith("listeners http: 0 routes")
