"""Keeps the replicas of every LocalWorkload running and the registry in step with them.

On each new snapshot it reconciles: new workloads and added replicas start, removed ones
stop, and a workload whose spec changed is restarted replica by replica. Registered replicas
are handed to the control plane as registry instances. With `pods` (`shoal up --netns`) each
replica gets a pod (pods.py), removed when the replica is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from shoal.api import LocalWorkloadSpec, Resource
from shoal.controlplane.app import ControlPlane
from shoal.model import MeshSnapshot
from shoal.runtime.credentials import Credentials
from shoal.runtime.gateway import Gateways
from shoal.runtime.pods import Pods
from shoal.runtime.ports import PortAllocator
from shoal.runtime.replica import Replica, ReplicaPorts

log = logging.getLogger("shoal.runtime")

Key = tuple[str, str]  # (namespace, workload name)

# A replica scaled away or replaced keeps serving this long after it left the endpoints: the
# push that moves callers off it (debounce, at most 0.5 s, plus the fan-out) lands first. Not
# when the whole mesh stops: then nobody is left to call it.
RETIRE_DRAIN_S = 2.0


class Supervisor:
    def __init__(
        self, cp: ControlPlane, credentials: Credentials | None = None, pods: Pods | None = None
    ) -> None:
        self.cp = cp
        self.pods = pods
        self.credentials = credentials
        self.ports = PortAllocator()
        self.replicas: dict[Key, list[Replica]] = {}
        self._specs: dict[Key, Resource] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.gateways = Gateways(self.ports, credentials)
        cp.listeners.append(self.on_snapshot)
        cp.debug_views["workloads"] = self.describe

    def _registry_changed(self) -> None:
        self.cp.set_instances(
            r.instance() for reps in self.replicas.values() for r in reps if r.registered
        )

    def workloads(self) -> list[Resource]:
        return [r for r in self.cp.store.resources if r.kind == "LocalWorkload"]

    def on_snapshot(self, snapshot: MeshSnapshot) -> None:
        if self.cp.xds_port == 0:
            return  # the first snapshot, before the xDS port is bound: `shoal up` reconciles
        self.reconcile(snapshot)

    def reconcile(self, snapshot: MeshSnapshot) -> None:
        if self._stopping:
            return  # replicas deregistering on the way down must not start new ones
        if self.pods is not None:
            self.pods.on_snapshot(snapshot)  # hosts files: names and VIPs of every service
        wanted = {(r.meta.namespace, r.meta.name): r for r in self.workloads()}
        for key in list(self.replicas):
            res = wanted.get(key)
            if res is None or res != self._specs.get(key):
                self._retire(self.replicas.pop(key))
                self._specs.pop(key, None)
        for key, res in wanted.items():
            assert isinstance(res.spec, LocalWorkloadSpec)
            hostname = snapshot.resolve(res.spec.service_name(res.meta.name), res.meta.namespace)
            current = self.replicas.setdefault(key, [])
            self._specs[key] = res
            while len(current) < res.spec.replicas:
                name = f"{res.meta.name}-{len(current)}"
                sa = res.spec.service_account or "default"
                creds = self.credentials
                spec = res.spec
                pod = (
                    self.pods.slot(name, res.meta.namespace, res.meta.annotations)
                    if self.pods is not None
                    else None
                )
                replica = Replica(
                    res,
                    index=len(current),
                    hostname=hostname,
                    ports=ReplicaPorts.in_pod(spec) if pod else ReplicaPorts.allocate(self.ports),
                    new_ports=lambda: ReplicaPorts.allocate(self.ports),
                    pod=pod,
                    xds_port=self.cp.xds_port,
                    on_change=self._registry_changed,
                    agent_args=creds.agent_args(name, res.meta.namespace, sa) if creds else (),
                    tls_mode="istio" if creds else "disabled",
                )
                current.append(replica)
                replica.start()
                log.info("started %s (service %s)", replica.name, hostname)
            while len(current) > res.spec.replicas:
                self._retire([current.pop()])
        gateways = [r for r in self.cp.store.resources if r.kind == "LocalGateway"]
        task = asyncio.create_task(self.gateways.reconcile(gateways, self.cp.xds_port))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _stop(self, replica: Replica, drain: float = 0.0) -> None:
        await replica.stop(drain=drain)
        if self.pods is not None and replica.pod is not None:
            await asyncio.to_thread(self.pods.forget, replica.pod)

    def _retire(self, replicas: list[Replica]) -> None:
        for replica in replicas:
            task = asyncio.create_task(self._stop(replica, drain=RETIRE_DRAIN_S))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def stop(self) -> None:
        self._stopping = True
        everyone = [r for reps in self.replicas.values() for r in reps]
        self.replicas.clear()
        await asyncio.gather(*(self._stop(r) for r in everyone), *self._pending)
        await self.gateways.stop()

    def describe(self) -> list[dict[str, object]]:
        """Every replica with its processes and ports (`GET /debug/workloads`)."""
        return [
            {
                "workload": r.workload.meta.name,
                "namespace": r.namespace,
                "service": r.hostname,
                "replica": r.name,
                "node": r.node_id,
                "labels": dict(r.spec.labels),
                "state": r.status.state,
                "restarts": r.status.restarts,
                "sidecar_restarts": r.sidecar_restarts,
                "registered": r.registered,
                "app_pid": r.app.pid if r.app is not None and r.app.running else None,
                "sidecar_pid": r.agent.pid if r.agent is not None and r.agent.running else None,
                "ports": dataclasses.asdict(r.ports),
                "ip": r.ip,
                "netns": r.pod.netns if r.pod is not None and r.pod.pod is not None else None,
            }
            for r in self.all()
        ]

    def all(self) -> list[Replica]:
        return [r for key in sorted(self.replicas) for r in self.replicas[key]]
