"""Control-plane replicas on Kubernetes (issue 13, requirement 6): kill the leader under load.

Three `shoal control-plane --kubernetes` processes on the fake API server, each serving xDS
from its own informers; real Envoys with the bootstrap `shoal agent` writes, carrying steady
load through a Kubernetes Service to two real backends. Who connects where is fixed by
construction, not left to Envoy's random pick among the replicas:

* cp-0 starts alone and takes the Lease; the "movers" start then, with every replica in their
  `xds-grpc` cluster (as an injected agent has them), so their ADS stream can only be on cp-0;
* cp-1 and cp-2 start; the "stayer" starts with only cp-1 and cp-2 in its cluster.

cp-0 is SIGKILLed (a crash: it gives nothing up). Then: not one request fails on any proxy;
exactly one survivor holds the Lease within its TTL; the movers reconnect to a survivor and
the stayer's stream never broke; the new leader is the one writing (the Warning Event on an
invalid object applied past the webhook is posted by it); and a VirtualService change made
after the crash reaches every proxy through whichever survivor it is on.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json
from harness.backend import Backend
from harness.controlplane import ControlPlane, is_synced
from harness.envoy import EnvoyProcess
from harness.kubeapi import KubeAPIThread
from harness.kubecp import endpoint_slice, install_crds, namespace, pod, service
from harness.load import SteadyLoad, fire
from harness.ports import free_port
from harness.wait import wait_until
from shoal.agent.bootstrap import SidecarIdentity, sidecar_bootstrap

pytestmark = pytest.mark.envoy

NS = "shop"
HOST = f"reviews.{NS}.svc.cluster.local"
LEASE_TTL_S = 3.0


def _vs(subset: str, weight: object = 100) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": NS},
        "spec": {
            "hosts": [HOST],
            "http": [{"route": [{"destination": {"host": HOST, "subset": subset},
                                 "weight": weight}]}],
        },
    }  # fmt: skip


def _seed(api: KubeAPIThread, backends: dict[str, Backend]) -> None:
    install_crds(api.server)
    api.server.create(None, namespace(NS))
    api.server.create(None, service("reviews", NS, port=80))
    for version, backend in backends.items():
        name = f"reviews-{version}"
        api.server.create(None, pod(name, NS, "127.0.0.1", "reviews", app="reviews",
                                    version=version))  # fmt: skip
        endpoint = ("127.0.0.1", name, True)
        api.server.create(
            None, endpoint_slice(f"reviews-{version}-x", NS, "reviews", backend.port, endpoint)
        )
    api.server.create(
        None,
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews", "namespace": NS},
            "spec": {"host": HOST, "subsets": [{"name": v, "labels": {"version": v}}
                                               for v in ("v1", "v2")]},
        },
    )  # fmt: skip
    api.server.create(None, _vs("v1"))


def _replica(tmp_path: Path, kubeconfig: Path, i: int) -> ControlPlane:
    return ControlPlane(
        None, workdir=tmp_path, name=f"cp-{i}",
        extra_args=["--kubernetes", "--kubeconfig", str(kubeconfig), "--replica-name", f"cp-{i}",
                    "--lease-ttl", str(LEASE_TTL_S), "--lease-renew", "2", "--lease-retry", "0.3"],
    )  # fmt: skip


def _sidecar(
    envoy_factory: Any, name: str, replicas: list[ControlPlane]
) -> tuple[EnvoyProcess, int, str]:
    """An Envoy on the bootstrap `shoal agent --xds-address` writes for `replicas`:
    (envoy, outbound port, node id)."""
    outbound = free_port()
    ident = SidecarIdentity(
        name=f"{name}-0", namespace=NS, workload=name, labels={"app": name},
        service_account=name, outbound_port=outbound, inbound_port=free_port(),
    )  # fmt: skip
    first, *more = [("127.0.0.1", cp.xds_port) for cp in replicas]
    boot = sidecar_bootstrap(
        ident, xds_host=first[0], xds_port=first[1], admin_port=free_port(), more_xds=more
    )
    return envoy_factory(boot, name=name), outbound, ident.node_id


def _holder(api: KubeAPIThread) -> str:
    lease = api.get("coordination.k8s.io/v1", "Lease", "shoal-control-plane", "shoal-system")
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def _leading(cp: ControlPlane) -> bool:
    return bool(get_json(cp.admin_url + "/debug/kubernetes")["leader"])


def _on(cp: ControlPlane) -> set[str]:
    """The node ids of the proxies whose ADS stream is on `cp`."""
    return {str(p["node"]) for p in cp.syncz()}


def _synced_on(cp: ControlPlane, node: str) -> bool:
    """`node`'s stream is on `cp` and it ACKed the last version of every type sent."""
    return any(p["node"] == node and is_synced([p], 1) for p in cp.syncz())


def _events(api: KubeAPIThread) -> list[dict[str, Any]]:
    return [
        e
        for e in api.objects("v1", "Event", NS)
        if e["involvedObject"].get("kind") == "VirtualService"
        and e["involvedObject"].get("name") == "reviews"
    ]


def test_killing_the_leader_under_load_fails_no_request(
    kubeapi: KubeAPIThread, tmp_path: Path, backend_factory: Any, envoy_factory: Any
) -> None:
    backends = {v: backend_factory(v) for v in ("v1", "v2")}
    kubeapi.call(_seed, kubeapi, backends)
    kubeconfig = kubeapi.kubeconfig(tmp_path / "cp.kubeconfig")
    replicas = [_replica(tmp_path, kubeconfig, i) for i in range(3)]
    loads: list[SteadyLoad] = []
    try:
        leader = replicas[0].start()
        leader.wait_ready(timeout=30)
        wait_until(lambda: _holder(kubeapi) == "cp-0", 10, what="cp-0 to take the Lease")
        movers = [_sidecar(envoy_factory, f"mover{i}", replicas) for i in range(2)]
        for cp in replicas[1:]:
            cp.start()
        for cp in replicas[1:]:
            cp.wait_ready(timeout=30)
        stayer = _sidecar(envoy_factory, "stayer", replicas[1:])
        sidecars = [*movers, stayer]
        wait_until(lambda: {n for _, _, n in movers} <= _on(leader), 15, what="the movers on cp-0")
        wait_until(
            lambda: stayer[2] in _on(replicas[1]) | _on(replicas[2]),
            15,
            what="the stayer on a follower",
        )
        for _, port, _ in sidecars:
            wait_until(
                lambda port=port: fire(port, HOST, 5) == {"status:200": 5, "v1": 5},
                15,
                what="v1 through every sidecar",
            )
        stayer_streams = stayer[0].stat("cluster.xds-grpc.upstream_cx_total")
        loads = [SteadyLoad(port, HOST, rps=40, workers=2).start() for _, port, _ in sidecars]
        wait_until(
            lambda: all(load.snapshot().by_backend["v1"] >= 10 for load in loads),
            10,
            what="load through every sidecar",
        )

        # the leader crashes under load
        killed_at = time.monotonic()
        leader.kill()
        survivors = replicas[1:]
        wait_until(
            lambda: _holder(kubeapi) in ("cp-1", "cp-2"),
            LEASE_TTL_S + 3,
            interval=0.05,
            what="a surviving replica to take the Lease",
        )
        took = time.monotonic() - killed_at
        print(f"leader killed: {_holder(kubeapi)} took the Lease after {took:.2f} s")
        assert took <= LEASE_TTL_S + 1.0, f"Lease taken {took:.1f} s after the leader died"
        new_leader = next(cp for cp in survivors if cp.name == _holder(kubeapi))
        # the survivors agree: the holder leads, the other follows
        wait_until(
            lambda: [_leading(cp) for cp in survivors] == [cp is new_leader for cp in survivors],
            5,
            what="the holder alone leading",
        )
        for _, _, node in movers:
            wait_until(
                lambda node=node: any(_synced_on(cp, node) for cp in survivors),
                15,
                what=f"{node} reconnected and synced on a surviving replica",
            )
        on_survivors = [_on(cp) for cp in survivors]
        assert sum(len(nodes) for nodes in on_survivors) == 3, on_survivors
        # the stayer's stream to its follower never broke
        assert stayer[0].stat("cluster.xds-grpc.upstream_cx_total") == stayer_streams
        assert stayer[0].stat("control_plane.connected_state") == 1

        # the new leader does the leader's writes: an invalid object applied past the
        # webhook gets its Warning Event from it
        vs_type = kubeapi.call(kubeapi.server.type, "networking.istio.io/v1", "VirtualService")
        held = kubeapi.get("networking.istio.io/v1", "VirtualService", "reviews", NS)
        bad = copy.deepcopy(held)
        bad["spec"] = _vs("v2", weight="lots")["spec"]
        kubeapi.call(kubeapi.server.store.update, vs_type, bad, None)
        (event,) = wait_until(lambda: _events(kubeapi), 15, what="a Warning Event on the VS")
        assert event["reportingInstance"] == new_leader.name, event
        assert event["reason"] == "InvalidConfig", event

        # every survivor serves from its own informers: a fix made now reaches every proxy
        fixed = copy.deepcopy(
            kubeapi.get("networking.istio.io/v1", "VirtualService", "reviews", NS)
        )
        fixed["spec"] = _vs("v2")["spec"]
        kubeapi.call(kubeapi.server.store.update, vs_type, fixed, None)
        for _, port, _ in sidecars:
            wait_until(
                lambda port=port: fire(port, HOST, 10) == {"status:200": 10, "v2": 10},
                15,
                what="the change after the crash through every sidecar",
            )
        time.sleep(0.5)  # load keeps running on the new config
    finally:
        results = [load.stop() for load in loads]
        for cp in replicas:
            cp.stop()

    for result in results:
        print(result.summary())
        assert result.failures == [], result.summary()
        assert result.total >= 100, result.summary()
        assert set(result.by_backend) == {"v1", "v2"}, result.summary()
