"""Gateways run by `shoal up`: one `shoal agent --mode router` per LocalGateway.

The agent's Envoy identifies itself as a `router` node with the LocalGateway's labels, so the
control plane gives it the listeners of every Gateway whose `selector` matches them. Those
listeners bind 127.0.0.1 at the Gateway servers' port numbers: the fixed ports to send
traffic to. Restarting the agent is its own business (it restarts Envoy with backoff).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from shoal.api import Resource
from shoal.api.localgateway import LocalGatewaySpec
from shoal.runtime.child import Child
from shoal.runtime.credentials import Credentials
from shoal.runtime.ports import PortAllocator

log = logging.getLogger("shoal.runtime")

Key = tuple[str, str]


def gateway_argv(
    res: Resource,
    xds_port: int,
    admin: int,
    health: int,
    extra: list[str] | None = None,
    *,
    metrics: int = 0,
) -> list[str]:
    assert isinstance(res.spec, LocalGatewaySpec)
    labels = ",".join(f"{k}={v}" for k, v in sorted(res.spec.labels.items()))
    return [
        sys.executable, "-m", "shoal.agent", "--log-level", "WARNING",
        "--mode", "router",
        "--name", f"{res.meta.name}-0",
        "--namespace", res.meta.namespace,
        "--workload", res.meta.name,
        "--labels", labels,
        "--service-account", res.spec.service_account or "default",
        "--xds-address", f"127.0.0.1:{xds_port}",
        "--admin-port", str(admin),
        "--health-port", str(health),
        "--prometheus-port", str(metrics),
        "--drain-seconds", "1",
        *(extra or []),
    ]  # fmt: skip


class Gateways:
    """Keeps one router agent running per LocalGateway; restarts it when its spec changes."""

    def __init__(self, ports: PortAllocator, credentials: Credentials | None = None) -> None:
        self.ports = ports
        self.credentials = credentials
        self.running: dict[Key, tuple[Resource, Child]] = {}
        self._lock = asyncio.Lock()

    async def _start(self, res: Resource, xds_port: int) -> Child:
        assert isinstance(res.spec, LocalGatewaySpec)
        extra = (
            self.credentials.agent_args(
                f"{res.meta.name}-0", res.meta.namespace, res.spec.service_account or "default"
            )
            if self.credentials is not None
            else []
        )
        p = self.ports
        argv = gateway_argv(res, xds_port, p.take(), p.take(), extra, metrics=p.take())
        child = Child(f"{res.meta.name}/gateway", argv, dict(os.environ))
        await child.start()
        log.info("started gateway %s", res.namespaced_name)
        return child

    async def reconcile(self, wanted: list[Resource], xds_port: int) -> None:
        async with self._lock:
            await self._reconcile(wanted, xds_port)

    async def _reconcile(self, wanted: list[Resource], xds_port: int) -> None:
        by_key = {(r.meta.namespace, r.meta.name): r for r in wanted}
        for key in list(self.running):
            res, child = self.running[key]
            if by_key.get(key) != res:
                del self.running[key]
                await child.stop()
        for key, res in by_key.items():
            if key not in self.running:
                self.running[key] = (res, await self._start(res, xds_port))

    async def stop(self) -> None:
        async with self._lock:
            children = [child for _, child in self.running.values()]
            self.running.clear()
            await asyncio.gather(*(c.stop() for c in children))
