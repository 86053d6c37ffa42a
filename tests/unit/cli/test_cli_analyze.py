"""`shoal analyze DIR`: every problem of a config folder at once, with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.api import ConfigError, Resource
from shoal.cli import checks
from shoal.cli.main import main

HOST = "reviews.default.svc.cluster.local"

SERVICE_ENTRY = f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - {HOST}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 80
    name: http
    protocol: HTTP
  endpoints:
  - address: 127.0.0.1
    ports:
      http: 9001
    labels:
      version: v1
  - address: 127.0.0.1
    ports:
      http: 9002
    labels:
      version: v2
"""

DESTINATION_RULE = f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: {HOST}
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"""


def _vs(name: str, http: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: default
spec:
  hosts:
  - {HOST}
  http:
{http}"""


def _dest(subset: str, weight: int | None = None) -> str:
    out = f"""    - destination:
        host: {HOST}
        subset: {subset}
"""
    return out + (f"      weight: {weight}\n" if weight is not None else "")


CLEAN = {
    "reviews-se.yaml": SERVICE_ENTRY,
    "reviews-dr.yaml": DESTINATION_RULE,
    "reviews-vs.yaml": _vs("reviews", "  - route:\n" + _dest("v1", 80) + _dest("v2", 20)),
}

# One mistake per file; each line number below points at the offending line.
MISTAKES = {
    # 1. malformed YAML: a flow sequence never closed
    "a-malformed.yaml": "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
    "metadata:\n  name: broken\n  labels: [unclosed\n",
    # 2. unknown field: `subset` where DestinationRule has `subsets`
    "b-unknown-field.yaml": DESTINATION_RULE.replace("name: reviews", "name: typo").replace(
        "  subsets:", "  subset:"
    ),
    # 3. wrong type: a bare number where Istio wants a duration string
    "c-wrong-type.yaml": _vs("timeout", "  - timeout: 3\n    route:\n" + _dest("v1")),
    # 4. weights adding up to 90
    "d-weights.yaml": _vs("split", "  - route:\n" + _dest("v1", 60) + _dest("v2", 30)),
    # 5. a subset no DestinationRule defines
    "e-subset.yaml": _vs("canary", "  - route:\n" + _dest("v9")),
}


def _write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_five_mistakes_all_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _write(tmp_path / "config", {**CLEAN, **MISTAKES})

    code = main(["analyze", str(root)])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    # (where and what, then the gist of why): the exact wording is shoal.api's to choose.
    expected = [
        ("a-malformed.yaml:6: invalid YAML: ", "did not find expected ',' or ']'"),
        (
            "b-unknown-field.yaml:8: DestinationRule default/typo: spec.subset: ",
            "unknown field 'subset'",
        ),
        (
            "c-wrong-type.yaml:10: VirtualService default/timeout: spec.http[0].timeout: ",
            "expected a duration string",
        ),
        (
            "d-weights.yaml:10: VirtualService default/split: spec.http[0].route: ",
            "add up to 90",
        ),
        (
            "e-subset.yaml:13: VirtualService default/canary:"
            " spec.http[0].route[0].destination.subset: ",
            "subset 'v9' is not defined",
        ),
    ]
    assert len(out) == 6, out
    for line, (prefix, gist) in zip(out, expected, strict=False):
        assert line.startswith(prefix), line
        assert gist in line, line
    assert out[5:] == ["5 errors in 5 files"]


def test_errors_sorted_by_file_then_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two mistakes in one file, the later one in a file that sorts first.
    two = MISTAKES["d-weights.yaml"] + "---\n" + MISTAKES["e-subset.yaml"]
    root = _write(
        tmp_path / "config", {**CLEAN, "z.yaml": two, "m.yaml": MISTAKES["c-wrong-type.yaml"]}
    )

    assert main(["analyze", str(root)]) == 1

    lines = capsys.readouterr().out.splitlines()
    places = [line.split(": ", 1)[0] for line in lines[:-1]]
    assert places == ["m.yaml:10", "z.yaml:10", "z.yaml:32"]
    assert lines[-1] == "3 errors in 2 files"


def test_clean_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _write(tmp_path / "config", CLEAN)
    assert main(["analyze", str(root)]) == 0
    assert capsys.readouterr().out == "no problems found: 3 resources\n"


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _write(tmp_path / "config", {**CLEAN, **MISTAKES})

    assert main(["analyze", str(root), "-o", "json"]) == 1

    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 8
    assert [(e["file"], e["line"]) for e in report["errors"]] == [
        ("a-malformed.yaml", 6),
        ("b-unknown-field.yaml", 8),
        ("c-wrong-type.yaml", 10),
        ("d-weights.yaml", 10),
        ("e-subset.yaml", 13),
    ]
    assert report["errors"][3]["field"] == "spec.http[0].route"
    assert report["warnings"] == []


def test_missing_dir_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_empty_dir_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "no *.yaml or *.yml files" in captured.err
    assert captured.out == "no problems found: 0 resources\n"


def test_warnings_are_printed_and_do_not_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def every_vs(resources: object) -> list[ConfigError]:
        assert isinstance(resources, tuple)
        found: list[Resource] = [r for r in resources if r.kind == "VirtualService"]
        return [r.error(("spec", "hosts"), "looks suspicious") for r in found]

    monkeypatch.setattr(checks, "CHECKS", [every_vs])
    root = _write(tmp_path / "config", CLEAN)

    assert main(["analyze", str(root)]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "reviews-vs.yaml:7: warning: VirtualService default/reviews: spec.hosts: looks suspicious",
        "no errors: 3 resources, 1 warning",
    ]
