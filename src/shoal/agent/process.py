"""Looks after one sidecar's Envoy: start, hot restart, restart after a crash, drain and stop.

Envoy runs as hot-restart epochs of one base id (agent/epochs.py). `restart()` validates the
new bootstrap with `--mode validate`, waits until the running epoch is LIVE and no older epoch
is still draining, then starts epoch N+1; that epoch takes the listen sockets, and Envoy
itself drains epoch N and ends it after `--parent-shutdown-time-s`. The agent never signals a
draining parent (a supervisor killing it races the hand-off); it only reaps it. A third epoch
started while a parent still drains would make Envoy end that parent at once, so restarts
queue behind the drain.

A binary whose `--hot-restart-version` differs from the running one's cannot take over its
sockets: that restart is a cold one (drain, stop, start at epoch 0), logged as such. A crash
(an exit nobody asked for) restarts at epoch 0 with exponential backoff; draining parents the
crashed epoch would have ended are ended first. `stop()` drains: responses carry
`Connection: close` (HTTP/2: GOAWAY), in-flight requests get up to the drain time, then every
epoch is terminated. Each Envoy runs in its own process group, so a signal to the agent's
group does not skip the drain, and gets `PR_SET_PDEATHSIG`, so a SIGKILLed agent leaves none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from shoal.agent.epochs import (
    BinaryFingerprint,
    EnvoyOptions,
    epoch_argv,
    find_envoy,
    shared_memory_file,
)
from shoal.agent.shmsweep import sweep_shared_memory

__all__ = ["EnvoyProcess", "RestartError", "RestartResult", "find_envoy"]

log = logging.getLogger("shoal.agent")

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: the child only calls it
LIVE_TIMEOUT_S = 60.0
_RETRIES = 3  # a new epoch that fails to start is retried at the same epoch number


def _die_with_agent() -> None:
    """In the forked child: SIGTERM when the agent's thread that spawned it ends.

    Envoys are spawned from the event loop's thread, which lives as long as the agent."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class RestartError(RuntimeError):
    """A restart that did not happen; the running epoch keeps serving."""


@dataclass(frozen=True)
class RestartResult:
    epoch: int
    pid: int
    base_id: int | None
    seconds: float  # from the request to the new epoch LIVE
    hot: bool  # False: a cold restart (incompatible binary, or hot restart disabled)
    waited: float = 0.0  # of `seconds`, spent waiting for an older epoch to finish draining

    def as_dict(self) -> dict[str, object]:
        return {
            "epoch": self.epoch,
            "pid": self.pid,
            "base_id": self.base_id,
            "seconds": round(self.seconds, 3),
            "hot": self.hot,
            "waited": round(self.waited, 3),
        }


@dataclass(eq=False)
class _Epoch:
    number: int
    binary: str
    proc: asyncio.subprocess.Process
    task: asyncio.Task[int]  # forwards its output; its result is the exit code
    exit_code: int | None = field(default=None)

    @property
    def alive(self) -> bool:
        return not self.task.done()


class EnvoyProcess:
    def __init__(
        self,
        bootstrap: Path,
        admin_port: int,
        *,
        envoy: str | None = None,
        options: EnvoyOptions | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.admin_port = admin_port
        self.envoy = envoy or find_envoy()
        self.options = options or EnvoyOptions()
        self.base_id_path = (workdir or bootstrap.parent) / "envoy-base-id"
        self.base_id: int | None = self.options.base_id
        self.current: _Epoch | None = None
        self.parents: list[_Epoch] = []  # older epochs, draining until Envoy ends them
        self.restarts = 0  # crashes restarted
        self.hot_restarts = 0
        self.pids: list[int] = []  # every Envoy this agent started, in order
        self.restarting = False
        self._all: set[_Epoch] = set()
        self._lock = asyncio.Lock()
        self._swapped = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._versions: dict[str, str] = {}
        self._waited = 0.0
        self.gave_up = False  # run() stopped restarting after options.give_up_after crashes

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def proc(self) -> asyncio.subprocess.Process | None:
        return self.current.proc if self.current is not None else None

    # ------------------------------------------------------------------ processes
    async def _spawn(self, number: int, binary: str, bootstrap: Path) -> _Epoch:
        base_id = None if number == 0 and self.base_id is None else self.base_id
        if base_id is None:
            with contextlib.suppress(FileNotFoundError):
                self.base_id_path.unlink()  # so the id read back is the one Envoy picks now
        argv = epoch_argv(
            binary,
            bootstrap,
            self.options,
            epoch=number,
            base_id=base_id,
            base_id_path=self.base_id_path,
        )
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_agent,
            # its own process group: a SIGTERM to the agent's group (shoal up stopping a
            # sidecar, Ctrl-C in a terminal) reaches the agent, which drains Envoy first,
            # instead of ending Envoy at once beside it
            process_group=0,
        )
        ep = _Epoch(number, binary, proc, asyncio.create_task(self._watch(proc, number)))
        self._all.add(ep)
        self.pids.append(proc.pid)
        log.info("envoy epoch %d started (pid %d)", number, proc.pid)
        if self.options.hot_restart and self.base_id is None:
            self.base_id = await self._read_base_id(ep)
        return ep

    async def _watch(self, proc: asyncio.subprocess.Process, number: int) -> int:
        assert proc.stdout is not None
        async for line in proc.stdout:
            sys.stderr.write(f"[envoy {proc.pid} epoch {number}] {line.decode(errors='replace')}")
        return await proc.wait()

    async def _read_base_id(self, ep: _Epoch) -> int | None:
        """The base id Envoy picked (written early in its start), None if it died first."""
        while ep.alive:
            with contextlib.suppress(OSError, ValueError):
                text = self.base_id_path.read_text().strip()
                if text:
                    log.info("envoy base id %s", text)
                    return int(text)
            await asyncio.sleep(0.02)
        return None

    async def _terminate(self, ep: _Epoch, within: float = 5.0) -> None:
        if ep.alive:
            with contextlib.suppress(ProcessLookupError):
                ep.proc.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(ep.task), within)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    ep.proc.kill()
        ep.exit_code = await ep.task
        self._all.discard(ep)
        log.info("envoy epoch %d stopped (pid %d, exit %s)", ep.number, ep.proc.pid, ep.exit_code)

    def _reap_parent(self, ep: _Epoch) -> None:
        def done(task: asyncio.Task[int]) -> None:
            with contextlib.suppress(ValueError):
                self.parents.remove(ep)
            self._all.discard(ep)
            ep.exit_code = None if task.cancelled() else task.result()
            level = logging.INFO if ep.exit_code == 0 else logging.WARNING
            pid = ep.proc.pid
            log.log(level, "envoy epoch %d (pid %d) exited: %s", ep.number, pid, ep.exit_code)

        ep.task.add_done_callback(done)

    # ------------------------------------------------------------------ admin
    async def _admin_json(self, path: str) -> Any:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http,
                http.get(f"{self.admin_url}{path}") as resp,
            ):
                if resp.status != 200:
                    return None
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def server_info(self) -> dict[str, Any] | None:
        info = await self._admin_json("/server_info")
        return info if isinstance(info, dict) else None

    async def _wait_live(self, ep: _Epoch) -> bool:
        """True once `ep` answers on the admin port as LIVE (the parent's admin, which is up
        until the child asks it to close, says another epoch: so the epoch is checked)."""
        deadline = asyncio.get_running_loop().time() + LIVE_TIMEOUT_S
        while ep.alive and not self._stopping and asyncio.get_running_loop().time() < deadline:
            info = await self.server_info()
            if info is not None and info.get("state") == "LIVE":
                opts = info.get("command_line_options") or {}
                if int(opts.get("restart_epoch", 0)) == ep.number:
                    return True
            await asyncio.sleep(0.05)
        return False

    async def ready(self) -> bool:
        """Envoy's own readiness; during a hot restart the parent serves while the new epoch
        starts (and Envoy closes the parent's admin port meanwhile), so that counts as ready."""
        if self.restarting and self.current is not None and self.current.alive:
            return True
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http,
                http.get(f"{self.admin_url}/ready") as resp,
            ):
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def describe(self) -> dict[str, object]:
        cur = self.current
        return {
            "epoch": cur.number if cur is not None else None,
            "pid": cur.proc.pid if cur is not None and cur.alive else None,
            "binary": cur.binary if cur is not None else self.envoy,
            "bootstrap": str(self.bootstrap),
            "base_id": self.base_id,
            "hot_restart": self.options.hot_restart,
            "draining": [{"epoch": p.number, "pid": p.proc.pid} for p in self.parents],
            "pids": list(self.pids),
            "hot_restarts": self.hot_restarts,
            "crash_restarts": self.restarts,
            "restarting": self.restarting,
        }

    # ------------------------------------------------------------------ supervision
    async def run(self) -> None:
        """Run Envoy until `stop()`, restarting it at epoch 0 with backoff after a crash.

        Returns early, with `gave_up` set, after `options.give_up_after` quick crashes."""
        backoff = 0.2
        quick = 0  # crashes in a row within 10 s of their start
        if self.options.hot_restart:
            await asyncio.to_thread(sweep_shared_memory)
        async with self._lock:
            if self._stopping:
                return
            self.current = await self._spawn(0, self.envoy, self.bootstrap)
        while not self._stopping:
            cur = self.current
            assert cur is not None
            started = asyncio.get_running_loop().time()
            swapped = asyncio.ensure_future(self._swapped.wait())
            await asyncio.wait({cur.task, swapped}, return_when=asyncio.FIRST_COMPLETED)
            swapped.cancel()
            if self._swapped.is_set():
                self._swapped.clear()
                continue
            async with self._lock:
                if self._stopping or self.current is not cur:
                    continue
                cur.exit_code = cur.task.result()
                self._all.discard(cur)
                self.restarts += 1
                if asyncio.get_running_loop().time() - started > 10:
                    backoff = 0.2  # a long healthy run resets the backoff
                    quick = 0
                quick += 1
                if self.options.give_up_after and quick >= self.options.give_up_after:
                    log.error(
                        "envoy exited with %s, %d quick crashes in a row; giving up",
                        cur.exit_code,
                        quick,
                    )
                    for parent in list(self.parents):
                        await self._terminate(parent)
                    self.gave_up = True
                    return
                log.warning("envoy exited with %s; restarting in %.1f s", cur.exit_code, backoff)
                # the epoch that would have ended them is gone; nobody else will
                for parent in list(self.parents):
                    await self._terminate(parent)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                if not self._stopping:
                    self.current = await self._spawn(0, self.envoy, self.bootstrap)

    async def _validate(self, binary: str, bootstrap: Path) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                binary,
                *("--mode", "validate", "-c", str(bootstrap), "--log-level", "error"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as err:
            raise RestartError(f"cannot run {binary}: {err.strerror or err}") from err
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            tail = out.decode(errors="replace").strip().splitlines()[-3:]
            raise RestartError(f"{binary} --mode validate refused {bootstrap}: {' '.join(tail)}")

    async def _hot_restart_version(self, binary: str) -> str:
        # keyed by the file, not the path: an upgrade puts another file behind the same path
        key = str(BinaryFingerprint.of(binary))
        if key not in self._versions:
            proc = await asyncio.create_subprocess_exec(
                binary,
                "--hot-restart-version",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await proc.communicate()
            self._versions[key] = out.decode(errors="replace").strip()
        return self._versions[key]

    async def restart(
        self, bootstrap: Path | None = None, binary: str | None = None
    ) -> RestartResult:
        """Move Envoy onto `bootstrap` and `binary` (default: the current ones) without
        dropping a connection; raises RestartError, leaving the running epoch serving."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        bootstrap = bootstrap or self.bootstrap
        binary = binary or self.envoy
        async with self._lock:
            if self._stopping:
                raise RestartError("the agent is stopping")
            cur = self.current
            if cur is None or not cur.alive:
                raise RestartError("envoy is not running (it is being restarted after a crash)")
            await self._validate(binary, bootstrap)
            hot = self.options.hot_restart and (
                await self._hot_restart_version(binary)
                == await self._hot_restart_version(cur.binary)
            )
            self.restarting = True
            self._waited = 0.0
            try:
                move = self._hot if hot else self._cold
                child = await move(cur, binary, bootstrap)
            finally:
                self.restarting = False
            self.current, self.bootstrap, self.envoy = child, bootstrap, binary
            self._swapped.set()
            self.hot_restarts += int(hot)
            took = loop.time() - asked
            result = RestartResult(
                child.number, child.proc.pid, self.base_id, took, hot, self._waited
            )
            log.info("envoy restarted: %s", result.as_dict())
            return result

    async def _hot(self, cur: _Epoch, binary: str, bootstrap: Path) -> _Epoch:
        # One draining parent at most: a third epoch would make Envoy end it before its time.
        grace = self.options.parent_shutdown_time_s + 10
        if self.parents:
            log.info("restart waits for epoch %d to finish draining", self.parents[0].number)
            loop = asyncio.get_running_loop()
            since = loop.time()
            stopping = asyncio.ensure_future(self._stopped.wait())
            try:
                while self.parents and not self._stopping and loop.time() < since + grace:
                    await asyncio.wait(
                        [*(p.task for p in self.parents), stopping],
                        timeout=since + grace - loop.time(),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    await asyncio.sleep(0)  # let the reaping callbacks run
            finally:
                stopping.cancel()
            self._waited = loop.time() - since
            if self._stopping:
                raise RestartError("the agent is stopping")
            if self.parents:
                raise RestartError("an older epoch is still draining past its shutdown time")
        if not await self._wait_live(cur):
            raise RestartError(f"epoch {cur.number} is not LIVE; cannot hand over from it")
        for attempt in range(1, _RETRIES + 1):
            child = await self._spawn(cur.number + 1, binary, bootstrap)
            if await self._wait_live(child):
                self.parents.append(cur)
                self._reap_parent(cur)
                return child
            await self._terminate(child)
            if self._stopping:
                raise RestartError("the agent is stopping")
            log.warning(
                "epoch %d did not come up (exit %s, attempt %d)",
                *(child.number, child.exit_code, attempt),
            )
            await asyncio.sleep(0.5 * attempt)
        raise RestartError(f"epoch {cur.number + 1} failed to start {_RETRIES} times")

    async def _cold(self, cur: _Epoch, binary: str, bootstrap: Path) -> _Epoch:
        log.warning(
            "%s cannot hot-restart epoch %d (%s); restarting cold", binary, cur.number, cur.binary
        )
        for parent in list(self.parents):
            await self._terminate(parent)
        await self._drain(cur)
        await self._terminate(cur)
        child = await self._spawn(0, binary, bootstrap)
        if not await self._wait_live(child):
            # still the new one: it may come LIVE later, and the old one is gone anyway
            log.warning("epoch 0 of %s not LIVE after %.0f s", binary, LIVE_TIMEOUT_S)
        return child

    # ------------------------------------------------------------------ drain and stop
    async def _active_requests(self) -> int | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http,
                http.get(f"{self.admin_url}/stats?filter=downstream_rq_active$") as resp,
            ):
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        return sum(
            int(line.rsplit(":", 1)[1])
            for line in text.splitlines()
            # the admin listener counts this very request
            if ":" in line and not line.startswith("http.admin.")
        )

    async def _drain(self, ep: _Epoch) -> None:
        """Connection: close / GOAWAY on every response, then wait (at most the drain time)
        until no request is in flight."""
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
                await http.post(f"{self.admin_url}/healthcheck/fail")
                await http.post(f"{self.admin_url}/drain_listeners?graceful")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain_s
        while ep.alive and loop.time() < deadline:
            # no answer (its admin port closed by an aborted hand-over): wait out the drain
            if await self._active_requests() == 0:
                return
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Drain, then end every epoch; never leaves an Envoy running."""
        self._stopping = True
        self._stopped.set()
        self._swapped.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain_s
        # a hand-over under way sees the flag, ends its new epoch and gives up
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10), self._lock:
                pass
        cur = self.current
        if cur is not None and cur.alive:
            await self._drain(cur)
        # parents drain on their own; their in-flight requests get the same deadline
        if self.parents:
            await asyncio.wait(
                [p.task for p in self.parents], timeout=max(0.0, deadline - loop.time())
            )
        for ep in list(self._all):
            await self._terminate(ep)
        if self.base_id is not None:
            with contextlib.suppress(OSError):
                shared_memory_file(self.base_id).unlink()
