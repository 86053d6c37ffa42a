"""`shoal up DIR`: the control plane, every workload and its sidecar, in one process tree.

Ctrl-C or SIGTERM stops apps first, then sidecars, then the control plane, and waits for
every child: nothing is left running. With `netns` every replica is a pod with transparent
capture (pods.py); its namespaces, links and bridge go at the end, and a run killed before
that is cleaned up by the next one (or `shoal up --cleanup`).
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

from shoal.agent.capture import PROXY_UID
from shoal.controlplane.app import ControlPlane, Settings
from shoal.runtime.credentials import Credentials
from shoal.runtime.pods import DEFAULT_STATE_DIR, DEFAULT_SUBNET, DEFAULT_VIPS, Pods
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
    # pods: each replica in its own network namespace, traffic captured (pods.py)
    netns: bool = False
    state_dir: Path = DEFAULT_STATE_DIR
    pod_subnet: str = DEFAULT_SUBNET  # the bridge's /24: host .1, pods from .2
    vip_range: str = DEFAULT_VIPS


async def run_up(settings: UpSettings) -> None:
    private: list[Path] = []  # temporary CA and token directories, removed at the end
    try:
        await _run_up(settings, private)
    finally:
        for path in private:
            shutil.rmtree(path, ignore_errors=True)


async def _run_up(settings: UpSettings, private: list[Path]) -> None:
    if not settings.netns:
        await _serve(settings, private, None)
        return
    pods = await asyncio.to_thread(Pods.open, settings.state_dir, settings.pod_subnet)
    try:
        await _serve(settings, private, pods)
    finally:
        await asyncio.to_thread(pods.close)


async def _serve(settings: UpSettings, private: list[Path], pods: Pods | None) -> None:
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
            local_vips=settings.vip_range if pods is not None else None,
            xds_extra_hosts=(pods.host_ip,) if pods is not None else (),
        )
    )
    credentials = None
    if cp.security is not None:
        token_dir = Path(tempfile.mkdtemp(prefix="shoal-tokens-"))
        private.append(token_dir)
        # pods' sidecars run as the proxy UID and must read their token and the roots
        credentials = Credentials(
            cp.security, token_dir, owner_uid=PROXY_UID if pods is not None else None
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(cp, credentials, pods)
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
