"""An auto-registered entry's life in the config store: written on connect, kept across a
reconnect within the grace period, deleted after it; with a probe, written only while the
last report passed."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf import json_format, struct_pb2

from shoal.api import Change, parse_file
from shoal.api.resource import Resource
from shoal.controlplane.autoregister import AutoRegistry
from shoal.model import parse_proxy
from shoal.xds.server import Connection
from shoal.xds.stream import StreamProtocol

GROUP = """\
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: reviews, namespace: default}
spec:
  template: {serviceAccount: reviews}
"""
PROBE = "  probe: {periodSeconds: 1, tcpSocket: {port: 9080}}\n"


def _registry(text: str, grace_s: float) -> tuple[AutoRegistry, list[int]]:
    (group,), _ = parse_file("g.yaml", text)
    triggers: list[int] = []

    def lookup(namespace: str, name: str) -> Resource | None:
        return group if (namespace, name) == ("default", "reviews") else None

    return AutoRegistry(lookup, lambda: triggers.append(1), grace_s=grace_s), triggers


def _conn(n: int, sa: str = "reviews") -> Connection:
    conn = Connection(
        id=n,
        delta=False,
        protocol=StreamProtocol(delta=False, boot_id="b", missing=lambda *_: None),
    )
    conn.proxy = parse_proxy(
        "sidecar~10.9.0.2~vm.default~default.svc.cluster.local",
        {"SERVICE_ACCOUNT": sa, "AUTO_REGISTER_GROUP": "reviews", "OUTBOUND_PORT": "15001",
         "INTERCEPTION_MODE": "NONE"},
    )  # fmt: skip
    return conn


def _kinds(changes: list[Change]) -> list[str]:
    return ["delete" if c.deleted else "upsert" for c in changes]


def test_a_reconnect_within_the_grace_period_keeps_the_entry_and_expiry_deletes_it() -> None:
    async def scenario() -> None:
        reg, _ = _registry(GROUP, grace_s=0.2)
        assert reg.on_connect(_conn(1)) is None
        changes = reg.take_changes()
        assert _kinds(changes) == ["upsert"]
        assert changes[0].source == "autoregister:WorkloadEntry/default/reviews-10-9-0-2"
        reg.on_disconnect(_conn(1))
        await asyncio.sleep(0.05)
        assert reg.on_connect(_conn(2)) is None  # back within the grace period
        await asyncio.sleep(0.4)
        assert reg.take_changes() == [] and reg.describe()["entries"]  # nothing happened
        reg.on_disconnect(_conn(2))
        await asyncio.sleep(0.4)
        assert _kinds(reg.take_changes()) == ["delete"]
        assert reg.describe() == {"grace_period_s": 0.2, "removed": 1, "entries": []}

    asyncio.run(scenario())


def test_another_service_account_is_refused_and_nothing_is_written() -> None:
    reg, triggers = _registry(GROUP, grace_s=1)
    refusal = reg.on_connect(_conn(1, sa="ratings"))
    assert refusal is not None and "is for service account reviews" in refusal
    assert reg.take_changes() == [] and triggers == []


class _Context:
    """What `report` reads of a gRPC context without authentication: nothing but abort."""

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


def _report(reg: AutoRegistry, healthy: bool | None) -> dict[str, Any]:
    request = struct_pb2.Struct()
    body: dict[str, Any] = {"namespace": "default", "group": "reviews", "address": "10.9.0.2"}
    if healthy is not None:
        body.update({"healthy": healthy, "message": "m"})
    request.update(body)
    reply = asyncio.run(reg.report(request, _Context()))  # type: ignore[arg-type]
    out: dict[str, Any] = json_format.MessageToDict(reply)
    return out


def test_with_a_probe_the_entry_is_written_only_while_the_last_report_passed() -> None:
    reg, _ = _registry(GROUP + PROBE, grace_s=1)
    answer = _report(reg, None)  # the agent's first call: what to run
    assert answer["probe"]["tcpSocket"]["port"] == 9080 and answer["registered"] is False
    assert reg.on_connect(_conn(1)) is None
    assert reg.take_changes() == []  # not ready yet
    _report(reg, True)
    assert _kinds(reg.take_changes()) == ["upsert"]
    _report(reg, True)
    assert reg.take_changes() == []  # unchanged: nothing rewritten
    _report(reg, False)
    assert _kinds(reg.take_changes()) == ["delete"]
    entry = reg.describe()["entries"][0]  # type: ignore[index]
    assert entry["healthy"] is False and entry["serving"] is False and entry["connected"]
