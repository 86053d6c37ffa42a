"""One control-plane process: config directory in, ADS out, admin HTTP beside it.

Changes flow one way: the directory source says "something changed", the debouncer waits for
the burst to end, the store validates and keeps last-good config, a new snapshot is built and
the ADS server pushes to every stream what changed for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from shoal.api import ConfigError, ConfigStore
from shoal.controlplane.admin import start_admin
from shoal.generate import ConfigGenerator
from shoal.model import MeshSnapshot, build_snapshot
from shoal.sources.directory import read_config_dir, watch_dir
from shoal.xds.debounce import Debouncer
from shoal.xds.server import AdsServer

log = logging.getLogger("shoal.controlplane")


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    host: str = "127.0.0.1"
    xds_port: int = 15010
    admin_port: int = 15014
    debounce_s: float = 0.1
    max_debounce_s: float = 1.0
    test_hooks: bool = False


def new_boot_id() -> str:
    """Prefix for every version this process sends: never reused across restarts."""
    return f"{int(time.time() * 1000):x}{os.getpid() & 0xFFFF:04x}"


class ControlPlane:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.boot_id = new_boot_id()
        self.store = ConfigStore()
        self.ads = AdsServer(self.boot_id)
        self.snapshot: MeshSnapshot | None = None
        self.errors: tuple[ConfigError, ...] = ()
        self._seq = 0
        self.stopping = asyncio.Event()

    def reload(self) -> None:
        """Read the directory, validate, and push a new snapshot if the config changed."""
        started = time.perf_counter()
        result = self.store.update(read_config_dir(self.settings.config_dir))
        if result.errors != self.errors:
            for err in result.errors:
                if err not in self.errors:
                    log.error("%s", err)
            self.errors = result.errors
        if not result.changed and self.snapshot is not None:
            return
        self._seq += 1
        version = f"{self.boot_id}.{self._seq}"
        self.snapshot = build_snapshot(version, result.resources, errors=result.errors)
        self.ads.update(ConfigGenerator(self.snapshot))
        log.info(
            "snapshot %s: %d services, %d resources, built in %.1f ms",
            version,
            len(self.snapshot.services),
            len(result.resources),
            (time.perf_counter() - started) * 1000,
        )

    async def run(self) -> None:
        s = self.settings
        self.reload()
        port = await self.ads.start(s.host, s.xds_port)
        runner = await start_admin(self, s.host, s.admin_port)
        log.info("xDS on %s:%d, admin on %s:%d", s.host, port, s.host, s.admin_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        debouncer = Debouncer(s.debounce_s, s.max_debounce_s, self.reload)
        watcher = asyncio.create_task(
            watch_dir(str(s.config_dir), debouncer.trigger, self.stopping)
        )
        try:
            await self.stopping.wait()
        finally:
            log.info("stopping")
            await watcher
            await runner.cleanup()
            await self.ads.stop(grace=0.5)
