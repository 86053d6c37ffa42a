"""When the agent hot-restarts its Envoy: a new bootstrap, a new binary, or `shoal agent reload`.

`Reloader.watch` polls (once a second) the options file, the Envoy binary it names and the
other files the bootstrap is made from (`watched`: the service-account token, which Envoy
sends on every ADS (re)connection from its bootstrap): a bootstrap that comes out different,
or a binary path or file that changed (an upgrade moves a new file into place), hot-restarts
Envoy. So a token the kubelet rotated is the one Envoy presents from then on, not the one it
started with, which expires. `reload()` (POST /reload on the health port, or
SIGHUP) re-reads everything and restarts even if nothing changed. A refused change (bad
options file, a bootstrap Envoy does not validate, no control plane at a new address) is
logged with its reason and tried again only once its input changes again; the running
Envoy keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.agent.epochs import BinaryFingerprint
from shoal.agent.options import AgentOptions, OptionsError, load_options
from shoal.agent.process import EnvoyProcess, RestartError, RestartResult

log = logging.getLogger("shoal.agent")

POLL_S = 1.0
CONNECT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class _Plan:
    """What Envoy would run: its bootstrap text, binary and control-plane addresses."""

    text: str
    binary: BinaryFingerprint
    xds: tuple[tuple[str, int], ...]


def _write_private(path: Path, text: str) -> None:
    """0600 from the first byte: a secure bootstrap holds the agent's token."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


async def _reachable(addresses: tuple[tuple[str, int], ...]) -> bool:
    """Whether any control-plane address accepts a TCP connection.

    A new epoch that cannot fetch its config still goes LIVE after Envoy's initial fetch
    timeout and takes over with no listeners, so an unreachable address is refused up front."""
    for host, port in addresses:
        with contextlib.suppress(OSError, TimeoutError):
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
            )
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
    return False


class Reloader:
    def __init__(
        self,
        envoy: EnvoyProcess,
        build: Callable[[AgentOptions], tuple[dict[str, Any], tuple[tuple[str, int], ...]]],
        workdir: Path,
        *,
        options_file: Path | None = None,
        default_binary: str,
        watched: tuple[Path, ...] = (),
    ) -> None:
        """`build(options)` -> (bootstrap dict, the control-plane addresses it uses);
        `watched`: files `build` reads, whose change should restart Envoy too."""
        self.envoy = envoy
        self.build = build
        self.workdir = workdir
        self.options_file = options_file
        self.default_binary = default_binary
        self.watched = watched
        self.running: _Plan | None = None
        self.last_error: str | None = None
        self._generation = 0
        self._tried: tuple[object, ...] | None = None  # the inputs of the last attempt
        self._lock = asyncio.Lock()

    def _options(self) -> AgentOptions:
        return load_options(self.options_file) if self.options_file else AgentOptions()

    def _plan(self) -> _Plan:
        opts = self._options()
        try:
            boot, xds = self.build(opts)
        except OSError as err:  # a watched file (the token) unreadable right now
            raise RestartError(f"bootstrap input {err.filename}: {err.strerror or err}") from err
        binary = opts.envoy or self.default_binary
        try:
            fingerprint = BinaryFingerprint.of(binary)
        except OSError as err:
            raise RestartError(f"Envoy binary {binary}: {err.strerror or err}") from err
        return _Plan(json.dumps(boot, indent=2, sort_keys=True), fingerprint, xds)

    def first(self) -> Path:
        """Write the first bootstrap; the path EnvoyProcess starts from. Raises OptionsError."""
        self._tried = self._inputs()
        plan = self._plan()
        self.running = plan
        self.envoy.envoy = plan.binary.path
        return self._write(plan)

    def _write(self, plan: _Plan) -> Path:
        self._generation += 1
        path = self.workdir / f"envoy-bootstrap-{self._generation}.json"
        _write_private(path, plan.text)
        return path

    async def reload(self, *, force: bool = True) -> RestartResult | None:
        """Restart onto what the inputs say now; None if nothing changed and not `force`.

        Raises OptionsError or RestartError; the running Envoy is then untouched."""
        async with self._lock:
            return await self._reload(force)

    async def _reload(self, force: bool) -> RestartResult | None:
        plan = self._plan()
        running = self.running
        if not force and running is not None and plan == running:
            return None
        if running is not None and plan.xds != running.xds and not await _reachable(plan.xds):
            shown = ",".join(f"{h}:{p}" for h, p in plan.xds)
            raise RestartError(f"no control plane answers at {shown}; keeping the running Envoy")
        old = self.envoy.bootstrap
        path = self._write(plan)
        try:
            result = await self.envoy.restart(path, plan.binary.path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.running = plan
        if old != path:
            old.unlink(missing_ok=True)
        self.last_error = None
        return result

    async def watch(self, stop: asyncio.Event) -> None:
        """Restart whenever the options file or the binary changes, until `stop`."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
            if stop.is_set():
                return
            await self._poll()

    def _inputs(self) -> tuple[object, ...]:
        """The raw inputs a restart depends on: the options file's bytes, the binary's file,
        the watched files' bytes."""
        try:
            text = self.options_file.read_bytes() if self.options_file else b""
        except OSError:
            text = b""
        try:
            binary = BinaryFingerprint.of(
                (self._options().envoy if self.options_file else None) or self.default_binary
            )
        except (OSError, OptionsError):
            binary = None
        watched = []
        for path in self.watched:
            try:
                watched.append(path.read_bytes())
            except OSError:
                watched.append(b"")  # being replaced: its next state is a change
        return (text, binary, *watched)

    async def _poll(self) -> None:
        inputs = self._inputs()
        if inputs == self._tried:
            return  # refused or done already: wait for the next change
        self._tried = inputs
        try:
            result = await self.reload(force=False)
        except (OptionsError, RestartError) as err:
            self.last_error = str(err)
            log.error("not restarting Envoy: %s", err)
            return
        if result is not None:
            log.info("Envoy hot-restarted after a change: %s", result.as_dict())
