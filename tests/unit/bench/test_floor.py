"""The floor server's wire encoding, and the fleet against it over loopback gRPC."""

from __future__ import annotations

import asyncio

from envoy.service.discovery.v3 import discovery_pb2

from loadharness import procstat
from loadharness.client import Fleet
from loadharness.floor import FloorServer, response_body, with_nonce
from loadharness.protocol import CDS, EDS, LDS, RDS, TYPES, Identity

from .test_protocol import assignment, cluster, listener


def test_response_bytes_parse_as_discovery_responses() -> None:
    res = [cluster("a").SerializeToString(), cluster("b").SerializeToString()]
    raw = with_nonce(response_body("floor-7", CDS, res), "42")
    msg = discovery_pb2.DiscoveryResponse.FromString(raw)
    assert (msg.version_info, msg.type_url, msg.nonce) == ("floor-7", CDS, "42")
    assert [a.SerializeToString() for a in msg.resources] == res
    delta_res = discovery_pb2.Resource(name="a", version="1", resource=cluster("a"))
    raw = with_nonce(response_body("s1", CDS, [delta_res.SerializeToString()]), "1")
    delta = discovery_pb2.DeltaDiscoveryResponse.FromString(raw)
    assert delta.system_version_info == "s1" and delta.resources[0].name == "a"


def test_percentile_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert procstat.percentile(values, 50) == 50 and procstat.percentile(values, 99) == 99
    assert procstat.percentile([3.0], 99) == 3.0


def _captured() -> dict[str, list[bytes]]:
    from envoy.config.route.v3 import route_pb2

    from .test_protocol import _any

    return {
        CDS: [cluster("a").SerializeToString()],
        EDS: [assignment("a", 8080).SerializeToString()],
        LDS: [listener("outbound", "http.80").SerializeToString()],
        RDS: [_any(route_pb2.RouteConfiguration(name="http.80")).SerializeToString()],
    }


async def test_fleet_syncs_with_the_floor_and_acks_its_pushes() -> None:
    floor = FloorServer(_captured())
    port = await floor.start()
    fleet = Fleet(
        f"127.0.0.1:{port}",
        [Identity(f"sim-{i}", "default", 20000 + i, 30000 + i) for i in range(6)],
        per_channel=4,
    )
    try:
        await fleet.start()
        assert await fleet.wait(fleet.all_acked, 10)
        state = fleet.proxies[5].state
        assert {t: list(state.holds(t)) for t in TYPES} == {
            CDS: ["a"], EDS: ["a"], LDS: ["outbound"], RDS: ["http.80"]
        }  # fmt: skip
        assert fleet.captured()[EDS] == _captured()[EDS]
        targets = {fleet.proxies[i].state.identity.node_id for i in (1, 2)}
        version = floor.push(EDS, [assignment("a", 9001).SerializeToString()], targets)
        acked = [p.state.types[EDS].ack_of_version(version) for p in fleet.proxies]
        assert await fleet.wait(
            lambda: all(p.state.types[EDS].ack_of_version(version) for p in fleet.proxies[1:3]), 10
        )
        await asyncio.sleep(0.1)
        acked = [p.state.types[EDS].ack_of_version(version) is not None for p in fleet.proxies]
        assert acked == [False, True, True, False, False, False]
        assert sum(s.acks for s in floor.streams.values()) >= 6 * 4 + 2
        # one response in flight per type: a burst of pushes coalesces, the newest one wins
        versions = [floor.push(EDS, None, None) for _ in range(5)]
        last = int(versions[-1].rpartition("-")[2])
        assert await fleet.wait(
            lambda: all(p.state.types[EDS].ack_of_serial(last) for p in fleet.proxies), 10
        )
        assert all(p.state.types[EDS].version == versions[-1] for p in fleet.proxies)
        assert all(len(p.state.types[EDS].events) <= 4 for p in fleet.proxies[3:])
        assert fleet.errors() == []
    finally:
        await fleet.stop()
        await floor.stop()
