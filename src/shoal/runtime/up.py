"""`shoal up DIR`: the control plane, every workload and its sidecar, in one process tree.

Ctrl-C or SIGTERM stops apps first, then sidecars, then the control plane, and waits for
every child: nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from shoal.controlplane.app import ControlPlane, Settings
from shoal.runtime.credentials import Credentials
from shoal.runtime.status import status_table
from shoal.runtime.supervisor import Supervisor
from shoal.sources.filetext import DEFAULT_MAX_FILE_BYTES

log = logging.getLogger("shoal.runtime")


@dataclass(frozen=True)
class UpSettings:
    config_dir: Path
    xds_port: int = 15010
    admin_port: int = 15014
    live_status: bool = True
    # secure mode: CA (in ca_dir, else a temporary one for this run), tokens, mTLS
    secure: bool = False
    ca_dir: Path | None = None
    cert_ttl_s: float = 24 * 3600.0
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    namespace: str = "default"


async def run_up(settings: UpSettings) -> None:
    private: list[Path] = []  # temporary CA and token directories, removed at the end
    try:
        await _run_up(settings, private)
    finally:
        for path in private:
            shutil.rmtree(path, ignore_errors=True)


async def _run_up(settings: UpSettings, private: list[Path]) -> None:
    ca_dir = settings.ca_dir
    if settings.secure and ca_dir is None:
        ca_dir = Path(tempfile.mkdtemp(prefix="shoal-ca-"))
        private.append(ca_dir)
    cp = ControlPlane(
        Settings(
            config_dir=settings.config_dir,
            xds_port=settings.xds_port,
            admin_port=settings.admin_port,
            secure=settings.secure,
            ca_dir=ca_dir,
            cert_ttl_s=settings.cert_ttl_s,
            max_file_bytes=settings.max_file_bytes,
            namespace=settings.namespace,
        )
    )
    credentials = None
    if cp.security is not None:
        token_dir = Path(tempfile.mkdtemp(prefix="shoal-tokens-"))
        private.append(token_dir)
        credentials = Credentials(cp.security, token_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(cp, credentials)
    await cp.start()
    # the first snapshot was built before the supervisor could know the xDS port
    assert cp.snapshot is not None
    supervisor.reconcile(cp.snapshot)
    log.info("shoal up: %d replicas starting", len(supervisor.all()))
    try:
        if settings.live_status and sys.stdout.isatty():
            with Live(status_table(supervisor), console=Console(), refresh_per_second=2) as live:
                while not stop.is_set():
                    live.update(status_table(supervisor))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
        else:
            await stop.wait()
    finally:
        log.info("shoal up: stopping %d replicas", len(supervisor.all()))
        await supervisor.stop()
        await cp.stop()
        log.info("shoal up: stopped")
