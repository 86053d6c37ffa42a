"""The fixture side of `shoal up` runs: start one from mesh YAML, and at teardown print what
a failed test needs to see, stop every run, and say which processes outlived it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from harness.configdir import ConfigDir
from harness.up import Proc, ShoalUp


def call_failed(request: pytest.FixtureRequest) -> bool:
    """At a fixture's teardown: did the test's call fail (or never run)? The report is kept
    on the item by the `pytest_runtest_makereport` hook in tests/conftest.py."""
    rep = getattr(request.node, "rep_call", None)
    return rep is None or bool(rep.failed)


def finish(runs: Iterable[ShoalUp], request: pytest.FixtureRequest) -> dict[str, list[Proc]]:
    """Stop `runs`, newest first, printing each one's state when the test failed; the
    processes that outlived each graceful stop (they are killed), by run name."""
    failed = call_failed(request)
    survivors: dict[str, list[Proc]] = {}
    for up in reversed(list(runs)):
        if failed:
            print(up.describe())
        survivors[up.name] = up.stop()
    return survivors


def run_mesh(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mesh: str,
    *,
    name: str,
    extra_args: Sequence[str] = (),
) -> Iterator[ShoalUp]:
    """A fixture body: `shoal up` on a folder holding `mesh` as mesh.yaml, stopped after."""
    folder = ConfigDir(tmp_path / "mesh")
    folder.write("mesh.yaml", mesh)
    up = ShoalUp(folder.path, tmp_path, name=name, extra_args=extra_args)
    try:
        yield up.start()
    finally:
        finish([up], request)
