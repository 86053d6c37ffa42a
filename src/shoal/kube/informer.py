"""An informer: one resource type's objects kept in memory by LIST then WATCH, for ever.

The protocol, as client-go's reflector speaks it (see KUBERNETES-NOTES.md):

1. LIST in pages (`limit`/`continue`); the first page's `metadata.resourceVersion` is the RV of
   the whole list. A continue token that expired (410) restarts the list.
2. WATCH from that RV with `allowWatchBookmarks=true` and a `timeoutSeconds` jittered between
   5 and 10 minutes. Every event moves the RV on, bookmarks included (watchcache.py).
3. A clean end of the stream (the server's timeout): watch again from the last RV.
4. `ERROR` 410 Expired, or a watch refused with 410: the RV fell off the server's history;
   LIST again and diff against the cache, so what was deleted meanwhile is deleted here too.
5. Any other failure (connection refused or reset, 5xx, other ERROR events): retry after an
   exponential backoff with jitter, from the same RV (a LIST if there is none yet).
6. Every `resync_s` the informer lists again and diffs: a safety net that costs one LIST.

A type the server does not serve (404: its CRD is not installed yet) counts as synced and
empty, and is listed again with backoff until it appears.

The handler is called with the changes of each LIST (one batch) and of each watch event, in
order, on the event loop; it must not block.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shoal.kube.backoff import Backoff, jittered
from shoal.kube.client import KubeClient, KubeError, KubeStatusError, KubeUnavailable
from shoal.kube.resources import ResourceType
from shoal.kube.watchcache import IndexFunc, ObjectEvent, WatchCache

log = logging.getLogger("shoal.kube")

Handler = Callable[[ResourceType, list[ObjectEvent]], None]


@dataclass(frozen=True)
class InformerSettings:
    page_size: int = 500
    watch_timeout_s: tuple[float, float] = (300.0, 600.0)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    resync_s: float = 1800.0  # 0: never


@dataclass
class InformerStats:
    lists: int = 0
    relists_after_expiry: int = 0
    watches: int = 0
    events: int = 0
    errors: int = 0
    last_error: str = ""
    synced_after_s: float | None = None  # from run() to the first complete list


class _Expired(Exception):
    """The watch's resourceVersion is gone from the server's history."""


class Informer:
    def __init__(
        self,
        client: KubeClient,
        rt: ResourceType,
        handler: Handler,
        *,
        indexes: Mapping[str, IndexFunc] | None = None,
        settings: InformerSettings | None = None,
    ) -> None:
        self.client = client
        self.rt = rt
        self.handler = handler
        self.settings = settings or InformerSettings()
        self.cache = WatchCache(indexes)
        self.synced = asyncio.Event()
        self.stats = InformerStats()
        self.served = True  # False while the server answers 404 for this type
        self._backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        self._started = time.monotonic()

    async def run(self) -> None:
        """List and watch until cancelled."""
        need_list = True
        next_resync = self._resync_at()
        self._started = time.monotonic()
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    next_resync = self._resync_at()
                await self._watch(next_resync)
                self._backoff.reset()
                if time.monotonic() >= next_resync:
                    need_list = True
            except _Expired:
                log.info("%s: resourceVersion expired; listing again", self.rt.plural)
                self.stats.relists_after_expiry += 1
                need_list = True
            except KubeStatusError as err:
                if err.code == 410:
                    self.stats.relists_after_expiry += 1
                    need_list = True
                    continue
                if err.code == 404:
                    self._not_served()
                    need_list = True
                await self._failed(err)
            except KubeError as err:
                await self._failed(err)

    def _resync_at(self) -> float:
        period = self.settings.resync_s
        return time.monotonic() + period if period > 0 else float("inf")

    async def _failed(self, err: KubeError) -> None:
        self.stats.errors += 1
        self.stats.last_error = str(err)
        delay = self._backoff.next_delay()
        level = logging.DEBUG if not self.served else logging.WARNING
        log.log(level, "%s: %s; retrying in %.1f s", self.rt.plural, err, delay)
        await asyncio.sleep(delay)

    def _not_served(self) -> None:
        if self.served:
            log.info("%s: not served by the API server (CRD not installed?)", self.rt.plural)
        self.served = False
        if not self.synced.is_set():
            self.handler(self.rt, self.cache.replace([], ""))
            self.cache.resource_version = None
            self._set_synced()

    async def _list(self) -> None:
        items: list[object] = []
        rv = token = ""
        while True:
            try:
                page = await self.client.list_page(
                    self.rt, limit=self.settings.page_size, continue_token=token
                )
            except KubeStatusError as err:
                if err.code == 410 and token:  # the continue token expired: start over
                    items, rv, token = [], "", ""
                    continue
                raise
            rv = rv or page.resource_version
            items += page.items
            token = page.continue_token
            if not token:
                break
        self.stats.lists += 1
        self.served = True
        events = self.cache.replace(items, rv)  # type: ignore[arg-type]
        if events or not self.synced.is_set():
            self.handler(self.rt, events)
        self._set_synced()

    def _set_synced(self) -> None:
        if not self.synced.is_set():
            self.stats.synced_after_s = time.monotonic() - self._started
        self.synced.set()

    async def _watch(self, until: float) -> None:
        low, high = self.settings.watch_timeout_s
        timeout = min(jittered(low, high), max(1.0, until - time.monotonic()))
        rv = self.cache.resource_version
        if not rv:  # the server's list carried no resourceVersion: nothing to resume from
            raise KubeUnavailable(f"list {self.rt.plural}: no resourceVersion to watch from")
        self.stats.watches += 1
        async for event_type, obj in self.client.watch(
            self.rt, resource_version=rv, timeout_s=max(1, int(timeout))
        ):
            if event_type == "ERROR":
                code = obj.get("code")
                if code == 410:
                    raise _Expired
                raise KubeUnavailable(f"watch {self.rt.plural}: ERROR {dict(obj)}")
            self.stats.events += 1
            change = self.cache.apply(event_type, obj)
            if change is not None:
                self.handler(self.rt, [change])
