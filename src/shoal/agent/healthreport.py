"""The agent's side of auto-registration: learn the WorkloadGroup's probe, run it, report.

The agent asks the control plane (`shoal.workloads.v1.WorkloadHealth/Report` on its xDS
port, with the workload's token in secure mode) for the probe of the group it joins. With
one, it runs the probe every `periodSeconds` (agent/probe.py) and reports the outcome once
the thresholds have decided it, and again every period, so a restarted control plane
learns it within a period. Without one it asks again now and then, in case the group gains
one. A control plane that cannot be reached is retried; the workload keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from shoal.agent.joining import Joining
from shoal.agent.probe import Probe, ProbeState, check

log = logging.getLogger("shoal.agent")

REPORT_METHOD = "/shoal.workloads.v1.WorkloadHealth/Report"
# how often a group without a probe is asked again, and a failed call retried
ASK_AGAIN_S = 15.0
RETRY_S = 1.0


class HealthReporter:
    def __init__(self, joining: Joining) -> None:
        self.joining = joining
        self.state: ProbeState | None = None
        self.last: dict[str, object] = {}  # the last answer, for /healthz/... and tests
        self.message = ""

    def _channel(self) -> grpc.aio.Channel:
        j = self.joining
        if j.token_file is None:
            return grpc.aio.insecure_channel(j.control_plane.split(",")[0])
        from shoal.ca.client import secure_channel  # noqa: PLC0415

        return secure_channel(j.control_plane, j.roots_pem)

    async def _report(
        self, channel: grpc.aio.Channel, healthy: bool | None, message: str
    ) -> dict[str, object]:
        j = self.joining
        call = channel.unary_unary(
            REPORT_METHOD,
            request_serializer=struct_pb2.Struct.SerializeToString,
            response_deserializer=struct_pb2.Struct.FromString,
        )
        request = struct_pb2.Struct()
        body: dict[str, Any] = {"group": j.group, "namespace": j.namespace}
        body["address"] = j.address
        if healthy is not None:
            body.update({"healthy": healthy, "message": message})
        request.update(body)
        metadata: tuple[tuple[str, str], ...] = ()
        if j.token_file is not None:
            token = j.token_file.read_text().strip()
            metadata = (("authorization", f"Bearer {token}"),)
        reply = await call(request, metadata=metadata, timeout=10)
        self.last = json_format.MessageToDict(reply)
        return self.last

    async def run(self, stop: asyncio.Event) -> None:
        async with self._channel() as channel:
            while not stop.is_set():
                try:
                    await self._cycle(channel, stop)
                except grpc.aio.AioRpcError as err:
                    log.warning("health report to the control plane: %s", err.details())
                    await _sleep(stop, RETRY_S)

    async def _cycle(self, channel: grpc.aio.Channel, stop: asyncio.Event) -> None:
        answer = await self._report(channel, None, "")
        raw = answer.get("probe")
        if not isinstance(raw, dict):
            self.state = None
            await _sleep(stop, ASK_AGAIN_S)
            return
        probe = Probe.from_json(raw)
        if self.state is None or self.state.probe != probe:
            self.state = ProbeState(probe)
            await _sleep(stop, probe.initial_delay_s)
        state = self.state
        # report every period while the probe stays the same; a changed probe is asked for
        # by the next cycle (each report's answer carries the group's probe)
        while not stop.is_set():
            passed, self.message = await check(probe)
            ready = state.record(passed)
            if ready is not None:
                answer = await self._report(channel, ready, self.message)
                raw = answer.get("probe")
                if not isinstance(raw, dict) or Probe.from_json(raw) != probe:
                    return
            await _sleep(stop, probe.period_s)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
