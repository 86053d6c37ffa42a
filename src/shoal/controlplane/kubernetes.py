"""The control plane's Kubernetes side: the source, identity, leader election, leader writes.

Every replica runs the informers (its own cache; xDS is served from it), TokenReview
authentication and the CA. Only the Lease holder writes to the API: the root certificate
ConfigMap in every namespace, Events on invalid objects and the Istio-style `status` of every
custom object (kube/status.py). Those writes run in one task that wakes when leadership,
namespaces, the trust roots, the config errors or the applied objects change (and every 30 s,
to repair what someone deleted), so a slow or absent API server never holds up a push.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shoal.api import ConfigError, Resource
from shoal.kube.client import KubeClient
from shoal.kube.events import EventRecorder
from shoal.kube.gatewayapistatus import gateway_api_bodies
from shoal.kube.informer import InformerSettings
from shoal.kube.leader import LeaderElector, LeaseSettings
from shoal.kube.resources import CORE_TYPES
from shoal.kube.rootcert import RootCertWriter
from shoal.kube.source import KubernetesSource
from shoal.kube.status import StatusWriter, observe_objects
from shoal.kube.tokenreview import MESH_AUDIENCE, TokenReviewer

log = logging.getLogger("shoal.controlplane.kubernetes")

REPAIR_S = 30.0


def default_identity() -> str:
    """This replica's name in the Lease: the pod name in a cluster, else host and pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: Path | None = None  # None: in-cluster service account
    identity: str = field(default_factory=default_identity)
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    informer: InformerSettings = field(default_factory=InformerSettings)
    audience: str = MESH_AUDIENCE


class KubeSide:
    def __init__(self, settings: KubeSettings, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self.client = KubeClient.connect(settings.kubeconfig)
        self._on_change = on_change
        self.source = KubernetesSource(self.client, self._changed, settings=settings.informer)
        self.leader = LeaderElector(
            self.client, settings.identity, settings.lease, on_change=self._leadership
        )
        self.events = EventRecorder(self.client, self.source.get_object, settings.identity)
        self.rootcert = RootCertWriter(self.client)
        self.status = StatusWriter(
            self.client,
            self.source.get_object,
            self.source.resource_type,
            allowed=lambda: self.leader.leading,
        )
        self.reviewer = TokenReviewer(self.client, settings.audience)
        self.roots_pem: str | None = None
        self.errors: tuple[ConfigError, ...] = ()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _changed(self) -> None:
        if self.source.namespaces_changed:
            self.source.namespaces_changed = False
            self._kick.set()
        self._on_change()

    def _leadership(self, leading: bool) -> None:
        if leading:  # a new leader does not know what the last one wrote
            self.events.forget()
            self.rootcert.forget()
            self.status.forget()
        self._kick.set()

    def config_applied(
        self, errors: tuple[ConfigError, ...], resources: Sequence[Resource] = ()
    ) -> None:
        """Called in the step that took the informers' changes and applied them: the custom
        objects the informers hold now are exactly the versions that config contains."""
        if errors != self.errors:
            self.errors = errors
            self._kick.set()
        core = {rt.kind for rt in CORE_TYPES}
        objects = [
            ((kind, *key), obj)
            for kind, informer in self.source.informers.items()
            if kind not in core
            for key, obj in informer.cache.objects.items()
        ]
        # Gateway API objects get their own status (routes' parents, Gateways' listeners)
        bodies = gateway_api_bodies(objects, resources, self.source.services)
        if self.status.observe(observe_objects(objects, errors, bodies)):
            self._kick.set()

    def set_roots(self, pem: str) -> None:
        if pem != self.roots_pem:
            self.roots_pem = pem
            self._kick.set()

    async def start(self) -> None:
        await self.source.start()
        self._tasks = [
            asyncio.create_task(self.leader.run(), name="lease"),
            asyncio.create_task(self._leader_writes(), name="leader-writes"),
        ]

    async def _leader_writes(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), REPAIR_S)
            self._kick.clear()
            if not self.leader.leading:
                continue
            if self.roots_pem is not None:
                await self.rootcert.sync(self.source.namespaces, self.roots_pem)
            await self.events.report(self.errors)
            await self.status.sync()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        # the lease task gives the Lease up as it ends
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.source.stop()
        await self.client.close()

    def describe(self) -> dict[str, object]:
        return {
            "identity": self.settings.identity,
            "leader": self.leader.leading,
            "lease_holder": self.leader.holder,
            "lease_transitions": self.leader.transitions,
            "synced": self.source.synced,
            "synced_after_s": self.source.synced_after_s,
            "token_reviews": self.reviewer.reviews,
            "events_posted": self.events.posted,
            "root_cert_writes": self.rootcert.writes,
            "status_writes": self.status.writes,
            "informers": self.source.describe(),
        }
