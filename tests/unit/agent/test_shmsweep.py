"""The agent's sweep of dead Envoys' shared memory: only unmapped, old files go."""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

from shoal.agent.shmsweep import sweep_shared_memory


def _file(directory: Path, name: str, age_s: float) -> Path:
    path = directory / name
    path.write_bytes(b"\0" * 104)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_only_old_files_no_process_maps_are_removed(tmp_path: Path) -> None:
    # /dev/shm files are named the same way as these; a mapped one is held by a live Envoy
    shm = Path("/dev/shm")
    held = _file(shm, f"envoy_shared_memory_test{os.getpid()}held", 600)
    dead = _file(shm, f"envoy_shared_memory_test{os.getpid()}dead", 600)
    young = _file(shm, f"envoy_shared_memory_test{os.getpid()}young", 0)
    other = _file(tmp_path, "unrelated", 600)
    try:
        with held.open("r+b") as f, mmap.mmap(f.fileno(), 104):
            removed = sweep_shared_memory(shm)
        assert dead.name in removed and not dead.exists()
        assert held.exists() and young.exists() and other.exists()
        assert held.name not in removed and young.name not in removed
    finally:
        for path in (held, dead, young):
            path.unlink(missing_ok=True)
