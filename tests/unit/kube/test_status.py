"""Istio-style status on custom objects (issue 13, requirement 6), against the fake API server:
the leader writes `Reconciled` through `/status` once an object is pushed, the error (field path
and why) on an invalid one, nothing when nothing changed (a status write is no config change
and triggers no push), a follower writes nothing, and a new leader catches up."""

from __future__ import annotations

import asyncio
import copy
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from harness.kubeapi.semantics import prepare_update
from harness.kubeapi.server import KubeAPIServer
from harness.kubecp import (
    add_service_with_pods,
    fake_api,
    install_crds,
    kube_control_plane,
    namespace,
    until,
)
from shoal.controlplane.app import ControlPlane
from shoal.kube.resources import config_types
from shoal.kube.status import (
    Observed,
    StatusWriter,
    comparable,
    desired_status,
    observe_objects,
)

NET = "networking.istio.io/v1"
VS = {
    "apiVersion": NET,
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {
        "hosts": ["reviews"],
        "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}],
    },
}
DR = {
    "apiVersion": NET,
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
}


def _seed(server: KubeAPIServer) -> None:
    install_crds(server)
    server.create(None, namespace("shop"))
    add_service_with_pods(server, "reviews", "shop", {"v1": "10.1.0.1"})
    server.create(None, DR)
    server.create(None, VS)


def _vs(server: KubeAPIServer) -> dict[str, Any]:
    obj = server.get(NET, "VirtualService", "reviews", "shop")
    assert obj is not None
    return obj


def _edit_spec(server: KubeAPIServer, edit: Any) -> None:
    """What `kubectl apply` past the webhook does: a new spec, generation + 1, status kept."""
    rt = server.type(NET, "VirtualService")
    old = _vs(server)
    new = copy.deepcopy(old)
    edit(new["spec"])
    server.store.update(rt, prepare_update(rt, old, new), None)


def _reconciled(obj: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Reconciled":
            return dict(cond)
    return None


def _status_is(server: KubeAPIServer, value: str, generation: int) -> bool:
    obj = _vs(server)
    cond = _reconciled(obj)
    return (
        cond is not None
        and cond["status"] == value
        and obj["status"].get("observedGeneration") == generation
    )


def _writes(cp: ControlPlane) -> int:
    assert cp.kube is not None
    return cp.kube.status.writes


async def test_the_leader_writes_reconciled_once_and_a_status_write_pushes_nothing(
    tmp_path: Path,
) -> None:
    server = await KubeAPIServer().start()
    try:
        _seed(server)
        async with kube_control_plane(server, tmp_path) as cp:
            assert cp.kube is not None
            await until(lambda: _status_is(server, "True", 1))
            obj = _vs(server)
            assert obj["metadata"]["generation"] == 1
            cond = _reconciled(obj)
            assert cond is not None
            assert cond["reason"] == "Pushed" and cond["lastTransitionTime"]
            assert "validationMessages" not in obj["status"]
            dr = server.get(NET, "DestinationRule", "reviews", "shop")
            assert dr is not None and _reconciled(dr) is not None
            await until(lambda: _writes(cp) == 2)  # the VirtualService and the DestinationRule

            # the informer sees the status writes (new resourceVersions, same generation):
            # no config change, no new snapshot, and nothing to write again
            assert cp.snapshot is not None
            version = cp.snapshot.version
            vs_rv = obj["metadata"]["resourceVersion"]
            informer = cp.kube.source.informers["VirtualService"]
            await until(
                lambda: (
                    (informer.cache.get(("shop", "reviews")) or {})
                    .get("metadata", {})
                    .get("resourceVersion")
                    == vs_rv
                )
            )
            await asyncio.sleep(1.0)  # several debounce periods and leader-write rounds
            assert cp.snapshot is not None and cp.snapshot.version == version
            assert _writes(cp) == 2
            assert _vs(server)["metadata"]["resourceVersion"] == vs_rv

            # a spec change: pushed, then the status says so for generation 2
            _edit_spec(server, lambda spec: spec["http"][0].update(timeout="5s"))
            await until(lambda: _status_is(server, "True", 2))
            assert cp.snapshot is not None and cp.snapshot.version != version
            later = _reconciled(_vs(server))
            assert later is not None
            assert later["lastTransitionTime"] == cond["lastTransitionTime"]  # still True
            await until(lambda: _writes(cp) == 3)  # counted once the PATCH has answered
            await asyncio.sleep(0.5)
            assert _writes(cp) == 3
    finally:
        await server.stop()


async def test_an_invalid_object_gets_the_error_in_its_status(tmp_path: Path) -> None:
    server = await KubeAPIServer().start()
    try:
        _seed(server)
        async with kube_control_plane(server, tmp_path) as cp:
            await until(lambda: _status_is(server, "True", 1))
            _edit_spec(server, lambda spec: spec["http"][0]["route"][0].update(weight="lots"))
            await until(lambda: _status_is(server, "False", 2))
            status = _vs(server)["status"]
            cond = _reconciled(_vs(server))
            assert cond is not None and cond["reason"] == "InvalidConfig"
            assert cond["message"].startswith("spec.http[0].route[0].weight: ")
            (message,) = status["validationMessages"]
            assert message["level"] == "ERROR"
            assert message["type"] == {"code": "IST0106", "name": "SchemaValidationError"}
            assert message["message"] == cond["message"]
            # the Event is still posted beside it
            await until(
                lambda: any(
                    e["involvedObject"]["name"] == "reviews"
                    for e in server.objects("v1", "Event", "shop")
                )
            )
            assert cp.errors  # and the last good version stays in force

            # fixed: True again, for the new generation, without the messages
            _edit_spec(server, lambda spec: spec["http"][0]["route"][0].pop("weight"))
            await until(lambda: _status_is(server, "True", 3))
            assert "validationMessages" not in _vs(server)["status"]
    finally:
        await server.stop()


async def test_a_follower_writes_nothing_and_a_new_leader_catches_up(tmp_path: Path) -> None:
    server = await KubeAPIServer().start()
    first = AsyncExitStack()
    try:
        _seed(server)
        a = await first.enter_async_context(kube_control_plane(server, tmp_path, name="cp-a"))
        await until(lambda: a.kube is not None and a.kube.leader.leading)
        await until(lambda: _status_is(server, "True", 1))
        async with kube_control_plane(server, tmp_path, name="cp-b") as b:
            assert b.kube is not None
            # the leader's status writes fail; meanwhile the object changes
            fault = server.fail_requests(count=None, method="PATCH", path="/status$")
            _edit_spec(server, lambda spec: spec["http"][0].update(timeout="5s"))
            await until(lambda: fault.fired >= 1)
            await asyncio.sleep(1.0)  # the follower has observed the change too
            assert _writes(b) == 0 and not b.kube.leader.leading
            assert _status_is(server, "True", 1)  # stale: generation 2 is not written
            server.faults.clear()
            await first.aclose()  # the leader stops and gives the Lease up
            await until(lambda: b.kube is not None and b.kube.leader.leading)
            # the new leader writes only what is stale: the VirtualService, not the DR
            await until(lambda: _status_is(server, "True", 2))
            await asyncio.sleep(0.5)
            assert _writes(b) == 1
    finally:
        await first.aclose()
        await server.stop()


def test_the_status_keeps_its_transition_time_and_compares_without_timestamps() -> None:
    ok = Observed("uid-1", 4, ())
    first = desired_status(ok, None, "2026-01-01T00:00:00Z")
    again = desired_status(ok, first, "2026-01-02T00:00:00Z")
    assert again["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert again["conditions"][0]["lastProbeTime"] == "2026-01-02T00:00:00Z"
    assert comparable(first) == comparable(again)
    bad = desired_status(
        Observed("uid-1", 5, ("spec.hosts: required",)), again, "2026-01-03T00:00:00Z"
    )
    assert bad["conditions"][0]["lastTransitionTime"] == "2026-01-03T00:00:00Z"
    assert comparable(bad) != comparable(again)


async def test_a_writer_that_is_not_the_lease_holder_writes_nothing(tmp_path: Path) -> None:
    async with fake_api(tmp_path) as (server, client):
        install_crds(server)
        server.create(None, namespace("shop"))
        obj = server.create(None, VS)
        types = {rt.kind: rt for rt in config_types()}
        leading = False
        writer = StatusWriter(
            client,
            lambda kind, ns, name: server.get(NET, kind, name, ns),
            types.get,
            allowed=lambda: leading,
        )
        key = ("VirtualService", "shop", "reviews")
        assert writer.observe(observe_objects([(key, obj)], []))
        assert not writer.observe(observe_objects([(key, obj)], []))  # nothing new
        await writer.sync()
        assert writer.writes == 0 and "status" not in _vs(server)
        leading = True
        await writer.sync()
        assert writer.writes == 1 and _status_is(server, "True", 1)
        writer.forget()  # as a new leader: the API's copy is right, nothing to write
        await writer.sync()
        assert writer.writes == 1
