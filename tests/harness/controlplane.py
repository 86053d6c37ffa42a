"""The real ``shoal control-plane`` as a subprocess, on ports that survive its restarts.

``ControlPlane`` picks its xDS and admin ports once, so ``kill()`` followed by ``restart()``
brings the control plane back where the Envoys expect it, exactly as after a crash. stderr is
kept in a file: tests assert on its error lines and failure messages quote its tail.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from harness import procs
from harness.adminhttp import get_json, request
from harness.ports import free_port
from harness.wait import wait_until

_VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def _command() -> list[str]:
    script = _VENV_BIN / "shoal"
    if script.exists():
        return [str(script)]
    found = shutil.which("shoal")
    return [found] if found else [sys.executable, "-m", "shoal.cli.main"]


class ControlPlane:
    """One shoal control plane serving ``config_dir``; a context manager."""

    def __init__(
        self,
        config_dir: Path | None,
        *,
        workdir: Path | None = None,
        test_hooks: bool = False,
        debounce_ms: int | None = 20,
        name: str = "control-plane",
        extra_args: Sequence[str] = (),
        xds_port: int | None = None,
    ) -> None:
        """`config_dir` None: no file source (pass `--kubernetes ...` in `extra_args`)."""
        self.config_dir = config_dir
        self.extra_args = list(extra_args)
        assert workdir is not None or config_dir is not None
        self.workdir = workdir or config_dir.parent  # type: ignore[union-attr]
        self.test_hooks = test_hooks
        self.debounce_ms = debounce_ms
        self.name = name
        self.xds_port = xds_port or free_port()
        self.admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.stderr_path = self.workdir / f"{name}.stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = [
            *_command(),
            "control-plane",
            *(["--config-dir", str(self.config_dir)] if self.config_dir is not None else []),
            *self.extra_args,
            "--xds-port",
            str(self.xds_port),
            "--admin-port",
            str(self.admin_port),
        ]
        if self.debounce_ms is not None:
            args += ["--debounce-ms", str(self.debounce_ms)]
        if self.test_hooks:
            args.append("--test-hooks")
        self.starts += 1
        with open(self.stderr_path, "ab") as err:
            err.write(f"===== start #{self.starts}: {' '.join(args)}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.workdir
            )
        procs.register(self.proc)
        return self

    def wait_ready(self, timeout: float = 45.0) -> float:
        """Wait for ``GET /ready`` to answer 200; return the monotonic time it first did.
        Generous: importing the control plane alone takes 8 s on a 2-core machine at load 14."""
        wait_until(
            lambda: (
                self._alive() and request("GET", self.admin_url + "/ready", timeout=1)[0] == 200
            ),
            timeout,
            interval=0.02,
            what=f"{self.name} /ready to answer 200",
            describe=self.describe,
        )
        return time.monotonic()

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (SIGKILL after ``timeout``); return the exit code."""
        if self.proc is None:
            return None
        return procs.terminate(self.proc, timeout)

    def kill(self) -> int | None:
        """SIGKILL, as in a crash."""
        if self.proc is None:
            return None
        return procs.kill(self.proc)

    def restart(self) -> Self:
        """Start again on the same ports (after ``stop`` or ``kill``)."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _alive(self) -> bool:
        assert self.proc is not None, "not started"
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}\n{self.stderr_tail()}"
            )
        return True

    # -- admin API ---------------------------------------------------------------------------

    def syncz(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = get_json(self.admin_url + "/debug/syncz")
        return data

    def config_status(self) -> dict[str, Any]:
        data: dict[str, Any] = get_json(self.admin_url + "/debug/config")
        return data

    def poison(self) -> None:
        status, body = request("POST", self.admin_url + "/debug/test/poison", body=b"")
        assert 200 <= status < 300, f"poison -> {status} {body!r}"

    def unpoison(self) -> None:
        status, body = request("DELETE", self.admin_url + "/debug/test/poison")
        assert 200 <= status < 300, f"unpoison -> {status} {body!r}"

    def proxy(self, node_id: str) -> dict[str, Any] | None:
        """This proxy's syncz entry, if it is connected."""
        return next((p for p in self.syncz() if p.get("node") == node_id), None)

    # -- diagnostics -------------------------------------------------------------------------

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")
        return ""

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def describe(self) -> str:
        parts = [f"--- {self.name} stderr ({self.stderr_path}) ---\n{self.stderr_tail()}"]
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                parts.append(f"--- syncz ---\n{self.syncz()}")
        return "\n".join(parts)


def is_synced(syncz: list[dict[str, Any]], n_proxies: int) -> bool:
    """True if ``n_proxies`` proxies are connected and each has ACKed all it was sent."""
    if len(syncz) != n_proxies:
        return False
    for proxy in syncz:
        types: dict[str, dict[str, Any]] = proxy.get("types", {})
        for required in ("cds", "lds"):
            if types.get(required, {}).get("acked") is None:
                return False
        for status in types.values():
            if status.get("sent") != status.get("acked") or status.get("nack") is not None:
                return False
    return True


def wait_synced(cp: ControlPlane, n_proxies: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until syncz shows ``n_proxies`` proxies with every type ACKed; return syncz."""
    last: list[list[dict[str, Any]]] = [[]]

    def probe() -> list[dict[str, Any]] | None:
        last[0] = cp.syncz()
        return last[0] if is_synced(last[0], n_proxies) else None

    return wait_until(
        probe,
        timeout,
        interval=0.05,
        what=f"{n_proxies} proxies synced (sent == acked for every type)",
        describe=lambda: f"last syncz: {last[0]}\n{cp.describe()}",
    )
