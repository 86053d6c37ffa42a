"""Bookkeeping for the subprocesses the harness starts, so none outlives the test run.

Each owner stops its process itself (SIGTERM, then SIGKILL after a timeout, always followed by
``wait``). The atexit guard is the safety net for interrupted runs: it only ever signals the
pids registered here, i.e. processes this harness started.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import threading

_lock = threading.Lock()
_live: dict[int, subprocess.Popen[bytes]] = {}


def register(proc: subprocess.Popen[bytes]) -> None:
    """Remember ``proc`` so the atexit guard can kill it if its owner never does."""
    with _lock:
        _live[proc.pid] = proc


def unregister(proc: subprocess.Popen[bytes]) -> None:
    with _lock:
        _live.pop(proc.pid, None)


def terminate(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """SIGTERM ``proc``, SIGKILL it if it has not exited after ``timeout``; reap it either way."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
    unregister(proc)
    return proc.wait()


def kill(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL ``proc`` and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    rc = proc.wait()
    unregister(proc)
    return rc


@atexit.register
def _kill_leftovers() -> None:
    with _lock:
        leftovers = list(_live.values())
    for proc in leftovers:
        kill(proc)
