"""The Kubernetes source: informers for every input, turned into change sets for the pipeline.

Each informer's events go, object by object, to where they belong:

* custom kinds (VirtualService, ..., the `shoal.dev` kinds) become `Change`s for the config
  store (configobjects.py), coalesced per object until the control plane takes them;
* Services, EndpointSlices and Pods go to the registry (registry.py), which names the
  service hosts they changed;
* Namespaces (and their labels) and ServiceAccounts are kept for whoever asks (root
  certificate ConfigMaps go to every namespace; `/debug/kubernetes` lists them).

Then `on_change` is called; the control plane debounces and pulls `take_changes()` and
`services`. Nothing here knows about xDS. When the API server goes away the informers retry
with backoff and hold what they had, so the mesh keeps its last good config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from shoal.api import Change
from shoal.kube.client import KubeClient
from shoal.kube.configobjects import config_change
from shoal.kube.informer import Informer, InformerSettings
from shoal.kube.objects import labels_of
from shoal.kube.registry import KubeRegistry
from shoal.kube.resources import (
    CORE_TYPES,
    ENDPOINT_SLICES,
    NAMESPACES,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
    ResourceType,
    config_types,
)
from shoal.kube.translate_endpoints import SERVICE_NAME_LABEL
from shoal.kube.watchcache import KubeObject, ObjectEvent
from shoal.model.snapshot import Service

log = logging.getLogger("shoal.kube")


def _slice_service(obj: KubeObject) -> list[str]:
    name = labels_of(obj).get(SERVICE_NAME_LABEL)
    meta = obj.get("metadata") or {}
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


def _pod_ip(obj: KubeObject) -> list[str]:
    status = obj.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or () if p.get("ip")]
    ip = status.get("podIP")
    return ips or ([str(ip)] if ip else [])


class KubernetesSource:
    def __init__(
        self,
        client: KubeClient,
        on_change: Callable[[], None],
        *,
        settings: InformerSettings | None = None,
        config_kinds: bool = True,
    ) -> None:
        self.client = client
        self.on_change = on_change
        self.registry = KubeRegistry()
        self._changes: dict[str, Change] = {}
        self.changed_hosts: set[str] = set()
        self.registry_changed = False
        self.namespaces_changed = False
        self._by_kind: dict[str, ResourceType] = {}
        indexes = {
            ENDPOINT_SLICES.kind: {"service": _slice_service},
            PODS.kind: {"ip": _pod_ip},
        }
        types = [*CORE_TYPES, *(config_types() if config_kinds else ())]
        self.informers: dict[str, Informer] = {}
        for rt in types:
            self._by_kind[rt.key] = rt
            self.informers[rt.key] = Informer(
                client, rt, self._on_events, indexes=indexes.get(rt.kind), settings=settings
            )
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ reads
    @property
    def services(self) -> Mapping[str, Service]:
        return self.registry.services

    @property
    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        """Namespace name -> its labels."""
        cache = self.informers[NAMESPACES.kind].cache
        return MappingProxyType({k[1]: labels_of(o) for k, o in cache.objects.items()})

    def pod_by_ip(self, ip: str) -> KubeObject | None:
        found = self.informers[PODS.kind].cache.by_index("ip", ip)
        return found[0] if found else None

    def get_object(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        informer = self.informers.get(kind)
        return informer.cache.get((namespace, name)) if informer is not None else None

    def resource_type(self, kind: str) -> ResourceType | None:
        return self._by_kind.get(kind)

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers.values())

    @property
    def synced_after_s(self) -> float | None:
        """Seconds from start until every informer had listed once (None: not yet)."""
        times = [i.stats.synced_after_s for i in self.informers.values()]
        return None if any(t is None for t in times) else max(t or 0.0 for t in times)

    def take_changes(self) -> list[Change]:
        """The config changes since the last call, one per object (the latest)."""
        changes, self._changes = list(self._changes.values()), {}
        return changes

    def take_hosts(self) -> set[str]:
        hosts, self.changed_hosts = self.changed_hosts, set()
        self.registry_changed = False
        return hosts

    def describe(self) -> dict[str, object]:
        return {
            kind: {
                "objects": len(i.cache),
                "synced": i.synced.is_set(),
                "served": i.served,
                "resource_version": i.cache.resource_version,
                "lists": i.stats.lists,
                "relists_after_expiry": i.stats.relists_after_expiry,
                "watches": i.stats.watches,
                "events": i.stats.events,
                "errors": i.stats.errors,
                "last_error": i.stats.last_error,
                "synced_after_s": i.stats.synced_after_s,
            }
            for kind, i in sorted(self.informers.items())
        }

    # ------------------------------------------------------------------ events
    def _on_events(self, rt: ResourceType, events: list[ObjectEvent]) -> None:
        kind = rt.kind
        if kind in (SERVICES.kind, ENDPOINT_SLICES.kind, PODS.kind):
            hosts = self.registry.apply(kind, events)
            if not hosts:
                return
            self.changed_hosts |= hosts
            self.registry_changed = True
        elif kind == NAMESPACES.kind:
            self.namespaces_changed = True
        elif kind == SERVICE_ACCOUNTS.kind:
            return
        else:
            changed = False
            for event in events:
                change = config_change(rt.key, event)
                if change is not None:
                    self._changes[change.source] = change
                    changed = True
            if not changed:
                return  # a status write or a resync: nothing the config reads moved
        self.on_change()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        for informer in self.informers.values():
            self._tasks.append(
                asyncio.create_task(informer.run(), name=f"informer-{informer.rt.plural}")
            )

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self.informers.values()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
