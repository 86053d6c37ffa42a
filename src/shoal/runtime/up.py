"""`shoal up DIR`: the control plane, every workload and its sidecar, in one process tree.

Ctrl-C or SIGTERM stops apps first, then sidecars, then the control plane, and waits for
every child: nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from shoal.controlplane.app import ControlPlane, Settings
from shoal.runtime.status import status_table
from shoal.runtime.supervisor import Supervisor

log = logging.getLogger("shoal.runtime")


@dataclass(frozen=True)
class UpSettings:
    config_dir: Path
    xds_port: int = 15010
    admin_port: int = 15014
    live_status: bool = True


async def run_up(settings: UpSettings) -> None:
    cp = ControlPlane(
        Settings(
            config_dir=settings.config_dir,
            xds_port=settings.xds_port,
            admin_port=settings.admin_port,
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(cp)
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
