"""Processes `shoal up` starts per replica load none of shoal's config models.

A replica restart waits for its sample app (and a sidecar start for its agent) to import;
`shoal.api` alone took about a second of that on a loaded machine, for two constants.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["shoal.agent.__main__", "shoal.samples.service"])
def test_replica_processes_do_not_import_the_config_models(module: str) -> None:
    heavy = ("shoal.api", "grpc", "google.protobuf")
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "[]", f"{module} loads {out}"
