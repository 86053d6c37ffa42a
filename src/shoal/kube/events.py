"""Kubernetes Events on invalid custom objects, so `kubectl describe` shows what is wrong.

The config store reports an invalid object (applied past the validating webhook) as a
`ConfigError` whose file is `kubernetes:<Kind>/<namespace>/<name>` (configobjects.py). The
leader posts one Warning Event per object and distinct set of messages, naming the field and
why, as `kubectl describe virtualservice reviews` lists them; an object whose errors are
unchanged is not reported again on every reload. Only the Lease holder writes (leader.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable

from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from shoal.api import ConfigError
from shoal.kube.client import KubeClient, KubeError
from shoal.kube.configobjects import parse_source
from shoal.kube.watchcache import KubeObject

log = logging.getLogger("shoal.kube.events")

REASON = "InvalidConfig"
COMPONENT = "shoal-control-plane"
# kind, namespace, name -> the object as the informer holds it (for its uid and apiVersion)
ObjectLookup = Callable[[str, str, str], KubeObject | None]


def event_message(errors: Iterable[ConfigError]) -> str:
    """`field: why` for each error, as one Event message (Kubernetes caps it at 1 KiB)."""
    text = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
    return text if len(text) <= 1024 else text[:1021] + "..."


def errors_by_object(
    errors: Iterable[ConfigError],
) -> dict[tuple[str, str, str], list[ConfigError]]:
    out: dict[tuple[str, str, str], list[ConfigError]] = {}
    for err in errors:
        found = parse_source(err.file)
        if found is not None:
            out.setdefault(found, []).append(err)
    return out


class EventRecorder:
    def __init__(self, client: KubeClient, lookup: ObjectLookup, instance: str) -> None:
        self.client = client
        self.lookup = lookup
        self.instance = instance
        self.posted = 0
        self._reported: dict[tuple[str, str, str], str] = {}

    def forget(self) -> None:
        """Report everything again (a new leader does not know what the old one posted)."""
        self._reported.clear()

    async def report(self, errors: Iterable[ConfigError]) -> None:
        current = errors_by_object(errors)
        for key in list(self._reported):
            if key not in current:
                del self._reported[key]  # fixed: report it again if it breaks again
        for key, errs in sorted(current.items()):
            message = event_message(errs)
            if self._reported.get(key) == message:
                continue
            obj = self.lookup(*key)
            if obj is None:
                continue
            try:
                await self._post(key, obj, message)
            except KubeError as err:
                log.warning("event for %s/%s/%s not posted: %s", *key, err)
                continue
            self._reported[key] = message

    async def _post(self, key: tuple[str, str, str], obj: KubeObject, message: str) -> None:
        kind, namespace, name = key
        meta = obj.get("metadata") or {}
        now = dt.datetime.now(dt.UTC)
        event = Event(
            metadata=ObjectMeta(name=f"{name}.{time.time_ns():x}", namespace=namespace),
            involvedObject=ObjectReference(
                apiVersion=str(obj.get("apiVersion") or ""),
                kind=kind,
                namespace=namespace,
                name=name,
                uid=meta.get("uid"),
                resourceVersion=meta.get("resourceVersion"),
            ),
            reason=REASON,
            message=message,
            type="Warning",
            source=EventSource(component=COMPONENT),
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
            reportingComponent=COMPONENT,
            reportingInstance=self.instance,
        )
        await self.client.call(self.client.typed.create(event))
        self.posted += 1
        log.info("event on %s %s/%s: %s", kind, namespace, name, message)
