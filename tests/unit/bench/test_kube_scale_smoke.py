"""kube_scale_bench.py --quick runs end to end: the fake API server process, shoal on it, the
floor and the files side, and every side converges (a figure is "-" when one did not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "kube_scale_bench.py"


def _row(out: str, name: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(name))
    return line[len(name) :].split()


def test_quick_run_converges_on_every_side() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # 12 Services x 3 pods: the objects the fake holds (namespaces, pods, slices, DR, VS)
    assert int(_row(out, "objects in the API server")[0]) > 12 * 5, out
    sync = float(_row(out, "informer cold sync: every type listed (s)")[0])
    assert 0 < sync < 60, out
    for name in (
        "cold start: every sidecar ACKed all (s)",
        "endpoint change: p99 sidecar ACKed (ms)",
        "endpoint change: 1st push -> all ACKed (ms)",
    ):
        kube, files, floor = _row(out, name)[:3]
        assert "-" not in (kube, files, floor), (name, out)
    assert _row(out, "endpoint change: sidecars receiving / affected")[0] == "12/12", out
    assert _row(out, "endpoint change: unaffected receiving")[0] == "0", out
    assert "!!" not in out, out
