"""Istio-style `status` on the custom objects shoal serves, written by the Lease holder.

istiod with `PILOT_ENABLE_STATUS` writes, through the `/status` subresource, an `IstioStatus`:

    status:
      observedGeneration: 3           # the metadata.generation this status is about
      conditions:
      - type: Reconciled
        status: "True"                # "False" when refused, with the reason in `message`
        reason: Pushed
        message: in the config pushed to the proxies
        lastTransitionTime: ...       # kept while `status` stays the same
        lastProbeTime: ...
      validationMessages:             # only on refused objects (Istio's analysis messages)
      - level: ERROR
        type: {code: IST0106, name: SchemaValidationError}
        documentationUrl: https://istio.io/latest/docs/reference/config/analysis/ist0106/
        message: "spec.http[0].route[0].weight: Input should be a valid integer"

`Reconciled` is True once the object's generation is part of a generation the control plane
pushed; an invalid object (applied past the validating webhook) gets False with every error
(field path and why), as `shoal analyze` words them, and its last good version stays in force.

What the control plane applied is *observed* synchronously, in the same step that took the
informers' changes (`observe`), so the generation in the status is the one the push
contained, never a newer one still on its way. Writes happen later, off the push path
(`sync`), only by the leader, and only when the status would change: a write is compared
without its timestamps against the status the informer holds and the status last written.
A status write changes the object's resourceVersion but neither its spec nor its generation,
so it is no config change (configobjects.py) and triggers no push, and observing again finds
nothing new: no write storm. A new leader (`forget`) compares against the informer's copy,
which holds what the old leader wrote, and writes only what is missing or stale.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from shoal.api import ConfigError
from shoal.kube.client import KubeClient, KubeError, KubeStatusError
from shoal.kube.events import errors_by_object
from shoal.kube.resources import ResourceType
from shoal.kube.watchcache import KubeObject

log = logging.getLogger("shoal.kube.status")

CONDITION = "Reconciled"
PUSHED = "in the config pushed to the proxies"
_SCHEMA_ERROR = MappingProxyType({"code": "IST0106", "name": "SchemaValidationError"})
_DOC_URL = "https://istio.io/latest/docs/reference/config/analysis/ist0106/"
_TIMESTAMPS = ("lastTransitionTime", "lastProbeTime")
QPS = 100.0  # status writes per second at most (istiod's PILOT_STATUS_QPS default)

Key = tuple[str, str, str]  # kind, namespace, name
ObjectLookup = Callable[[str, str, str], KubeObject | None]


@dataclass(frozen=True)
class Observed:
    """What the control plane made of one object version: its generation and its errors."""

    uid: str
    generation: int
    errors: tuple[str, ...]  # "field: why", empty when accepted
    # a Gateway API object's own status (api/gatewayapi/kubestatus.py), written instead of
    # Istio's Reconciled condition
    body: Mapping[str, Any] | None = None


def _meta(obj: KubeObject) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _generation(obj: KubeObject) -> int:
    value = _meta(obj).get("generation")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


def error_text(err: ConfigError) -> str:
    return f"{err.field}: {err.message}" if err.field else err.message


def observe_objects(
    objects: Iterable[tuple[Key, KubeObject]],
    errors: Iterable[ConfigError],
    bodies: Mapping[Key, Mapping[str, Any]] | None = None,
) -> dict[Key, Observed]:
    """The observation of every object the informers hold, given the applied config's errors
    (`bodies`: the status of Gateway API objects, in their own shape)."""
    by_object = errors_by_object(errors)
    bodies = bodies or {}
    out: dict[Key, Observed] = {}
    for key, obj in objects:
        meta = _meta(obj)
        errs = tuple(error_text(e) for e in by_object.get(key, ()))
        out[key] = Observed(str(meta.get("uid") or ""), _generation(obj), errs, bodies.get(key))
    return out


def desired_status(seen: Observed, held: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """The status `seen` calls for; `held` (the object's current status) keeps the
    condition's lastTransitionTime while its `status` value does not change."""
    if seen.body is not None:
        stamped = _stamped(seen.body, now)
        assert isinstance(stamped, dict)
        return stamped
    ok = not seen.errors
    value = "True" if ok else "False"
    transition = now
    for cond in (held or {}).get("conditions") or ():
        if (
            isinstance(cond, Mapping)
            and (cond.get("type"), cond.get("status")) == (CONDITION, value)
            and cond.get("lastTransitionTime")
        ):
            transition = str(cond["lastTransitionTime"])
    condition = {
        "type": CONDITION,
        "status": value,
        "reason": "Pushed" if ok else "InvalidConfig",
        "message": PUSHED if ok else "; ".join(seen.errors),
        "lastTransitionTime": transition,
        "lastProbeTime": now,
    }
    status: dict[str, Any] = {"observedGeneration": seen.generation, "conditions": [condition]}
    if not ok:
        status["validationMessages"] = [
            {"level": "ERROR", "type": dict(_SCHEMA_ERROR), "documentationUrl": _DOC_URL,
             "message": text}
            for text in seen.errors
        ]  # fmt: skip
    return status


def comparable(status: object) -> object:
    """A status without its timestamps: two statuses equal here say the same thing (Gateway
    API statuses hold conditions deeper down: `parents[].conditions`, `listeners[]...`)."""
    if not isinstance(status, Mapping):
        return None
    return _untimed(status)


def _stamped(value: object, now: str) -> object:
    """`value` with every empty lastTransitionTime set to `now`."""
    if isinstance(value, Mapping):
        return {
            k: now if k == "lastTransitionTime" and not v else _stamped(v, now)
            for k, v in value.items()
        }
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_stamped(v, now) for v in value]
    return value


def _untimed(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _untimed(v) for k, v in value.items() if k not in _TIMESTAMPS}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_untimed(v) for v in value]
    return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusWriter:
    def __init__(
        self,
        client: KubeClient,
        lookup: ObjectLookup,
        types: Callable[[str], ResourceType | None],
        *,
        qps: float = QPS,
        allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        self.client = client
        self.lookup = lookup
        self.types = types
        self.qps = qps
        self.allowed = allowed  # still the Lease holder? (checked before every write)
        self.writes = 0
        self.observed: dict[Key, Observed] = {}
        self._written: dict[Key, tuple[Observed, object]] = {}

    def observe(self, observed: dict[Key, Observed]) -> bool:
        """Record what was applied; True if anything differs from the last observation."""
        if observed == self.observed:
            return False
        self.observed = observed
        for key in [k for k in self._written if k not in observed]:
            del self._written[key]  # deleted: nothing to remember
        return True

    def forget(self) -> None:
        """Trust only the API's copy again (a new leader does not know what was written)."""
        self._written.clear()

    async def sync(self) -> None:
        """Write every status that differs from what it should be; failures retry later."""
        for key, seen in sorted(self.observed.items()):
            obj = self.lookup(*key)
            if obj is None:
                continue
            meta = _meta(obj)
            if str(meta.get("uid") or "") != seen.uid or _generation(obj) != seen.generation:
                continue  # a newer version, not applied yet: observed again after its push
            held = obj.get("status")
            held = held if isinstance(held, Mapping) else None
            want = desired_status(seen, held, _now())
            same = comparable(want)
            if comparable(held) == same or self._written.get(key) == (seen, same):
                continue
            if not self.allowed():
                return  # lost the Lease meanwhile: the next leader writes the rest
            try:
                written = await self._write(key, str(meta.get("resourceVersion") or ""), want)
            except KubeError as err:
                log.warning("status of %s %s/%s not written: %s", *key, err)
                continue
            if written:
                self._written[key] = (seen, same)
            # paced, as istiod's PILOT_STATUS_QPS: a new leader with thousands of objects
            # to write must not crowd the API server or this loop's pushes
            await asyncio.sleep(1.0 / self.qps)

    async def _write(self, key: Key, resource_version: str, status: dict[str, Any]) -> bool:
        kind, namespace, name = key
        rt = self.types(kind)
        if rt is None:
            return False
        res = create_namespaced_resource(rt.group, rt.version, rt.kind, rt.plural)
        # the resourceVersion as the informer holds it: 409 if the object moved since, and
        # the next observation decides again
        # a merge patch keeps what it does not name: null removes the messages once fixed
        body = {
            "metadata": {"resourceVersion": resource_version},
            "status": {"validationMessages": None, **status},
        }
        try:
            await self.client.call(
                self.client.typed.patch(
                    res.Status, name, body, namespace=namespace, patch_type=PatchType.MERGE
                )
            )
        except KubeStatusError as err:
            if err.code in (404, 409):
                return False  # gone or moved: its watch event brings the next observation
            raise
        self.writes += 1
        conditions = status.get("conditions") or [{}]
        log.info("status of %s %s/%s: %s", kind, namespace, name, conditions[0])
        return True
