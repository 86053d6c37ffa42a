"""`shoal agent`: one sidecar's caretaker. Writes the bootstrap, runs Envoy, serves health.

Stops cleanly on SIGTERM/SIGINT: Envoy drains, then exits, then the agent; nothing is left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.agent.bootstrap import ApiType, SidecarIdentity, sidecar_bootstrap
from shoal.agent.health import start_health
from shoal.agent.process import EnvoyProcess
from shoal.agent.security import AgentSecurity

if TYPE_CHECKING:
    from shoal.agent.secure import SecureSidecar

log = logging.getLogger("shoal.agent")


@dataclass(frozen=True)
class AgentSettings:
    identity: SidecarIdentity
    xds_host: str
    xds_port: int
    admin_port: int
    # more control-plane replicas: the xds cluster's other endpoints, the CA's other addresses
    xds_more: tuple[tuple[str, int], ...] = ()
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    api_type: ApiType = "GRPC"
    envoy: str | None = None
    concurrency: int = 1
    drain_s: float = 2.0
    envoy_log_level: str = "warning"
    security: AgentSecurity | None = None  # secure mode: certificate, SDS, token


async def _orphan_watch(stop: asyncio.Event) -> None:
    """If whoever started the agent dies without stopping it, stop anyway: no orphan Envoy."""
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(1)
        if os.getppid() != parent:
            log.warning("parent %d is gone; stopping", parent)
            stop.set()


def _write_private(path: Path, text: str) -> None:
    """0600 from the first byte: a secure bootstrap holds the agent's token."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


async def _secure_sidecar(
    settings: AgentSettings, workdir: Path, stop: asyncio.Event
) -> SecureSidecar | None:
    from shoal.agent.secure import SecureSidecar  # noqa: PLC0415  (plain agents stay light)
    from shoal.ca.identity import Identity  # noqa: PLC0415

    assert settings.security is not None
    ident = settings.identity
    sidecar = SecureSidecar(
        Identity(ident.namespace, ident.service_account),
        settings.security,
        ",".join(
            f"{h}:{p}" for h, p in ((settings.xds_host, settings.xds_port), *settings.xds_more)
        ),
        workdir,
    )
    if not await sidecar.start(stop):
        return None
    return sidecar


async def run_agent(settings: AgentSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="shoal-agent-") as workdir:
        path = Path(workdir) / "envoy-bootstrap.json"
        bootstrap = sidecar_bootstrap(
            settings.identity,
            xds_host=settings.xds_host,
            xds_port=settings.xds_port,
            admin_port=settings.admin_port,
            api_type=settings.api_type,
            more_xds=settings.xds_more,
        )
        secure = None
        if settings.security is not None:
            secure = await _secure_sidecar(settings, Path(workdir), stop)
            if secure is None:
                return
            bootstrap = secure.bootstrap(bootstrap)
        _write_private(path, json.dumps(bootstrap, indent=2))
        envoy = EnvoyProcess(
            path,
            settings.admin_port,
            envoy=settings.envoy,
            concurrency=settings.concurrency,
            drain_s=settings.drain_s,
            log_level=settings.envoy_log_level,
        )
        runner = (
            await start_health(
                envoy,
                settings.health_host,
                settings.health_port,
                certs=secure.describe if secure is not None else None,
            )
            if settings.health_port
            else None
        )
        task = asyncio.create_task(envoy.run())
        log.info("agent for %s: envoy admin :%d", settings.identity.node_id, settings.admin_port)
        watchdog = asyncio.create_task(_orphan_watch(stop))
        try:
            await stop.wait()
        finally:
            watchdog.cancel()
            await envoy.stop()
            await task
            if secure is not None:
                await secure.stop()
            if runner is not None:
                await runner.cleanup()
