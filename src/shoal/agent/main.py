"""`shoal agent`: one sidecar's caretaker. Writes the bootstrap, runs Envoy, serves health.

Hot-restarts Envoy when its bootstrap or binary changes (a rotated service-account token too),
on SIGHUP and on `shoal agent reload` (agent/reload.py). The CA is asked with the token file
read anew at every certificate request (agent/certs.py). Stops cleanly on SIGTERM/SIGINT: Envoy
drains, then exits, then the agent; nothing is left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from shoal.agent.bootstrap import ApiType, SidecarIdentity, sidecar_bootstrap
from shoal.agent.epochs import EnvoyOptions
from shoal.agent.health import start_health
from shoal.agent.joining import Joining
from shoal.agent.options import AgentOptions, OptionsError, merged
from shoal.agent.process import EnvoyProcess, RestartError
from shoal.agent.reload import Reloader
from shoal.agent.security import AgentSecurity

if TYPE_CHECKING:
    from shoal.agent.nodesecure import SecureNode
    from shoal.agent.secure import SecureSidecar

log = logging.getLogger("shoal.agent")

# The exit code of an agent whose Envoy crashed `--give-up-after` times in a row: its
# supervisor should start it again, on other ports if one of them may be taken.
GAVE_UP_EXIT = 3


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
    envoy_options: EnvoyOptions = field(default_factory=EnvoyOptions)
    security: AgentSecurity | None = None  # secure mode: certificate, SDS, token
    # what may change while the agent runs (agent/options.py); a change hot-restarts Envoy
    options_file: Path | None = None
    # joining a WorkloadGroup: its probe is run and reported (agent/healthreport.py)
    joining: Joining | None = None


async def _orphan_watch(stop: asyncio.Event) -> None:
    """If whoever started the agent dies without stopping it, stop anyway: no orphan Envoy."""
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(1)
        if os.getppid() != parent:
            log.warning("parent %d is gone; stopping", parent)
            stop.set()


async def _secure_sidecar(
    settings: AgentSettings, workdir: Path, stop: asyncio.Event
) -> SecureSidecar | SecureNode | None:
    from shoal.agent.nodesecure import SecureNode  # noqa: PLC0415  (plain agents stay light)
    from shoal.agent.secure import SecureSidecar  # noqa: PLC0415
    from shoal.ca.identity import Identity  # noqa: PLC0415

    assert settings.security is not None
    ident = settings.identity
    ca = ",".join(
        f"{h}:{p}" for h, p in ((settings.xds_host, settings.xds_port), *settings.xds_more)
    )
    sidecar: SecureSidecar | SecureNode
    if ident.type == "node":
        # one certificate per service account of the node's pods
        pods = json.loads(ident.node_pods or "[]")
        identities = [Identity(p["namespace"], p.get("service_account") or "default") for p in pods]
        sidecar = SecureNode(identities, settings.security, ca, workdir)
    else:
        sidecar = SecureSidecar(
            Identity(ident.namespace, ident.service_account), settings.security, ca, workdir
        )
    if not await sidecar.start(stop):
        return None
    return sidecar


def _bootstrap(
    settings: AgentSettings, opts: AgentOptions, secure: SecureSidecar | SecureNode | None
) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]]:
    """The bootstrap for the options now in force, and the control-plane addresses in it."""
    xds = opts.xds or ((settings.xds_host, settings.xds_port), *settings.xds_more)
    api_type = cast(ApiType, opts.api_type or settings.api_type)
    boot: dict[str, Any] = sidecar_bootstrap(
        settings.identity,
        xds_host=xds[0][0],
        xds_port=xds[0][1],
        admin_port=settings.admin_port,
        api_type=api_type,
        more_xds=xds[1:],
    )
    if secure is not None:
        boot = secure.bootstrap(boot)  # reads the token file again: a new token goes in too
    if opts.bootstrap_override:
        boot = merged(boot, opts.bootstrap_override)
    return boot, xds


async def _reload_on_sighup(reloader: Reloader) -> None:
    try:
        result = await reloader.reload()
    except (OptionsError, RestartError) as err:
        log.error("SIGHUP: not restarting Envoy: %s", err)
    else:
        log.info("SIGHUP: Envoy hot-restarted: %s", result and result.as_dict())


async def run_agent(settings: AgentSettings) -> int:
    """Run until SIGTERM/SIGINT (0) or until Envoy is given up on (GAVE_UP_EXIT)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="shoal-agent-") as tmp:
        workdir = Path(tmp)
        secure = None
        if settings.security is not None:
            secure = await _secure_sidecar(settings, workdir, stop)
            if secure is None:
                return 1
        envoy = EnvoyProcess(
            workdir / "envoy-bootstrap.json",
            settings.admin_port,
            envoy=settings.envoy,
            options=settings.envoy_options,
            workdir=workdir,
        )
        reloader = Reloader(
            envoy,
            lambda opts: _bootstrap(settings, opts, secure),
            workdir,
            options_file=settings.options_file,
            default_binary=envoy.envoy,
            # a rotated token goes into a new bootstrap (Envoy sends it on ADS reconnects)
            watched=(settings.security.token_file,) if settings.security is not None else (),
        )
        try:
            envoy.bootstrap = reloader.first()
        except (OptionsError, RestartError) as err:
            log.error("shoal agent: %s", err)
            if secure is not None:
                await secure.stop()
            raise SystemExit(2) from err
        runner = (
            await start_health(
                envoy,
                settings.health_host,
                settings.health_port,
                certs=secure.describe if secure is not None else None,
                reloader=reloader,
            )
            if settings.health_port
            else None
        )
        task = asyncio.create_task(envoy.run())
        sighup: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            t = asyncio.create_task(_reload_on_sighup(reloader))
            sighup.add(t)
            t.add_done_callback(sighup.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        log.info("agent for %s: envoy admin :%d", settings.identity.node_id, settings.admin_port)
        watchdog = asyncio.create_task(_orphan_watch(stop))
        reporter = None
        if settings.joining is not None:
            # (imported here: agents that join no group load no gRPC client)
            from shoal.agent.healthreport import HealthReporter  # noqa: PLC0415

            reporter = asyncio.create_task(HealthReporter(settings.joining).run(stop))
        watcher = asyncio.create_task(reloader.watch(stop))
        stopped = asyncio.create_task(stop.wait())
        try:
            # Envoy's supervision ends by itself only when it gives up
            await asyncio.wait({stopped, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            loop.remove_signal_handler(signal.SIGHUP)
            watchdog.cancel()
            if reporter is not None:
                reporter.cancel()
            await envoy.stop()
            watcher.cancel()
            for t in list(sighup):
                t.cancel()
            await task
            if secure is not None:
                await secure.stop()
            if runner is not None:
                await runner.cleanup()
    return GAVE_UP_EXIT if envoy.gave_up else 0
