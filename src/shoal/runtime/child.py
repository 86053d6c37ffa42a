"""A child process of `shoal up`, in its own process group so it is stopped as a whole.

Children get their own session: a Ctrl-C in the terminal reaches only `shoal up`, which then
stops apps first and sidecars last, so no request is cut by a sidecar vanishing under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

log = logging.getLogger("shoal.runtime")


class Child:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = asyncio.create_task(self._forward(self.proc))

    async def _forward(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            sys.stderr.write(f"[{self.name}] {line.decode(errors='replace')}")

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._pump is not None:
            await self._pump
        return code

    def _signal_group(self, sig: int) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the whole group, SIGKILL it after `grace`; always reaps."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), grace)
        except TimeoutError:
            log.warning("%s did not stop in %.0f s; killing it", self.name, grace)
            self._signal_group(signal.SIGKILL)
            await self.wait()
        # the group may hold grandchildren that outlived their parent
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill_now(self) -> None:
        self._signal_group(signal.SIGKILL)
