"""The body of `POST /debug/diff`: files relative to the config directory, or a clear no."""

from __future__ import annotations

import pytest

from shoal.controlplane.diffview import BadDiffRequest, changes_of


def test_files_and_deletions_become_changes() -> None:
    changes = changes_of({"files": {"b.yaml": "x: 1", "sub/a.yaml": ""}, "delete": ["c.yaml"]},
                         "default")  # fmt: skip
    assert [(c.source, c.text) for c in changes] == [
        ("b.yaml", "x: 1"),
        ("sub/a.yaml", ""),
        ("c.yaml", None),
    ]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ([], "expected {"),
        ({"files": ["a.yaml"]}, '"files" must map'),
        ({}, "names no file"),
        ({"files": {"/etc/passwd": "x"}}, "relative to the config directory"),
        ({"delete": ["../up.yaml"]}, "relative to the config directory"),
    ],
)
def test_bad_bodies_say_why(body: object, why: str) -> None:
    with pytest.raises(BadDiffRequest, match=why.replace("{", r"\{")):
        changes_of(body, "default")
