"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.

Every control-plane replica serves xDS, the CA and the webhooks; only the Lease holder writes
to the API (root certificate ConfigMaps, Events on invalid objects, the status of custom
objects), so replicas never race each other's writes.

* Every `retry_s` a replica reads the Lease. Held by nobody, or by a holder that has not
  renewed for `lease_s` *as observed on this replica's own clock* (renewTime values from
  another machine's clock are never compared with ours), it takes the Lease with an update
  preconditioned on the resourceVersion it read: of two replicas racing, the API server lets
  exactly one through (the other gets 409 Conflict and stays a follower).
* The holder renews every `retry_s` the same way; when it has not renewed for `renew_s`
  (`renew_s` < `lease_s`, so it stops before anyone may take over) it stops leading.
* A replica stopping cleanly gives the Lease up (holder cleared), so the next takes it at once.

Istio's defaults are a 30 s lease, 15 s renew deadline and ~7.5 s retry; tests run shorter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from shoal.kube.client import KubeClient, KubeError, KubeStatusError

log = logging.getLogger("shoal.kube.leader")

LEASE_NAME = "shoal-control-plane"
LEASE_NAMESPACE = "shoal-system"


@dataclass(frozen=True)
class LeaseSettings:
    name: str = LEASE_NAME
    namespace: str = LEASE_NAMESPACE
    lease_s: float = 30.0
    renew_s: float = 15.0
    retry_s: float = 7.5

    def __post_init__(self) -> None:
        if not 0 < self.retry_s < self.renew_s < self.lease_s:
            raise ValueError("lease timings must satisfy 0 < retry < renew deadline < lease")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        identity: str,
        settings: LeaseSettings | None = None,
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.client = client
        self.identity = identity
        self.settings = settings or LeaseSettings()
        self.on_change = on_change
        self.leading = False
        self.holder: str = ""
        self.transitions = 0
        # what the Lease said when we last saw it change, and when (our monotonic clock)
        self._observed: tuple[str, object] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Try to acquire and renew until cancelled; gives the Lease up when cancelled."""
        try:
            while True:
                try:
                    await self._attempt()
                except KubeError as err:
                    log.warning("lease %s: %s", self.settings.name, err)
                if self.leading and time.monotonic() - self._renewed_at > self.settings.renew_s:
                    log.warning("lease %s: not renewed in time; stepping down", self.settings.name)
                    self._set_leading(False)
                await asyncio.sleep(self.settings.retry_s)
        finally:
            if self.leading:
                self._set_leading(False)
                await self._release()

    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            log.info(
                "%s %s leader (lease %s/%s)",
                self.identity,
                "is now" if leading else "is no longer",
                self.settings.namespace,
                self.settings.name,
            )
            if self.on_change is not None:
                self.on_change(leading)

    async def _attempt(self) -> None:
        s = self.settings
        try:
            lease = await self.client.call(
                self.client.typed.get(Lease, s.name, namespace=s.namespace)
            )
        except KubeStatusError as err:
            if err.code != 404:
                raise
            await self._create()
            return
        spec = lease.spec or LeaseSpec()
        self.holder = spec.holderIdentity or ""
        self.transitions = spec.leaseTransitions or 0
        record = (self.holder, spec.renewTime)
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        mine = self.holder == self.identity
        expired = now - self._observed_at > s.lease_s
        if not (mine or not self.holder or expired):
            self._set_leading(False)
            return
        stamp = _now()
        if not mine:
            spec.acquireTime = stamp
            spec.leaseTransitions = self.transitions + 1
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = int(s.lease_s)
        spec.renewTime = stamp
        lease.spec = spec
        try:
            # carries metadata.resourceVersion as read: 409 if anyone wrote since
            await self.client.call(self.client.typed.replace(lease))
        except KubeStatusError as err:
            if err.code == 409:
                self._set_leading(False)
                return
            raise
        self._won()

    async def _create(self) -> None:
        s, stamp = self.settings, _now()
        lease = Lease(
            metadata=ObjectMeta(name=s.name, namespace=s.namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(s.lease_s),
                acquireTime=stamp,
                renewTime=stamp,
                leaseTransitions=0,
            ),
        )
        try:
            await self.client.call(self.client.typed.create(lease))
        except KubeStatusError as err:
            if err.code == 409:  # another replica created it first
                return
            raise
        self._won()

    def _won(self) -> None:
        self.holder = self.identity
        self._renewed_at = time.monotonic()
        self._set_leading(True)

    async def _release(self) -> None:
        s = self.settings
        try:
            lease = await self.client.call(
                self.client.typed.get(Lease, s.name, namespace=s.namespace)
            )
            if lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec.holderIdentity = ""
            await self.client.call(self.client.typed.replace(lease))
            log.info("lease %s released", s.name)
        except KubeError as err:
            log.info("lease %s not released: %s", s.name, err)
