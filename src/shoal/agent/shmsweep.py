"""Removes Envoy hot-restart shared memory that no process holds any more.

Each hot-restart base id has a file `/dev/shm/envoy_shared_memory_<id x 10>` that every live
epoch keeps mapped, and nothing removes it when the last Envoy of that id dies without its
agent's cleanup (the agent SIGKILLed, a container killed). An agent starting up removes the
ones no process maps and that are older than a minute (an Envoy that has just created its
file maps it within milliseconds), so such leftovers (104 bytes each) do not pile up.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

log = logging.getLogger("shoal.agent")

SHM = Path("/dev/shm")
PREFIX = "envoy_shared_memory_"
MIN_AGE_S = 60.0


def _mapped() -> set[str]:
    """Names of the /dev/shm Envoy files some process maps."""
    out: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for line in (proc / "maps").read_text().splitlines():
                where = line.find(f"/dev/shm/{PREFIX}")
                if where >= 0:
                    out.add(line[where + len("/dev/shm/") :].split()[0])
    return out


def sweep_shared_memory(shm: Path = SHM, min_age_s: float = MIN_AGE_S) -> list[str]:
    """Remove unmapped Envoy shared-memory files older than `min_age_s`; their names."""
    try:
        candidates = [p for p in shm.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return []
    now = time.time()
    old = []
    for path in candidates:
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > min_age_s:
                old.append(path)
    if not old:
        return []
    mapped = _mapped()
    removed = []
    for path in old:
        if path.name not in mapped:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
    if removed:
        log.info("removed %d stale Envoy shared-memory files", len(removed))
    return removed
