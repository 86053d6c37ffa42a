"""Proxyless gRPC: a real grpcio client (its own process, `xds:///` targets, the bootstrap
`shoal bootstrap grpc` writes) fed by shoal's control plane over real gRPC, calling real
grpcio servers on loopback. Routing, retries, timeouts and fault injection come from the same
Istio YAML a sidecar would get; no Envoy anywhere.

One control plane and one client process serve the whole module (the client keeps its
channels: config changes must reach it over xDS); each test has services of its own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.grpcbackend import GrpcBackend
from harness.grpcxdsclient import XdsClient
from harness.wait import wait_until

NS = "default"
PORT = 9000


def fqdn(name: str) -> str:
    return f"{name}.{NS}.svc.cluster.local"


def target(name: str) -> str:
    return f"xds:///{fqdn(name)}:{PORT}"


def service_entry(name: str, backends: dict[str, GrpcBackend]) -> str:
    endpoints = "".join(
        f"\n  - {{address: 127.0.0.1, ports: {{grpc: {b.port}}}, labels: {{version: {v}}}}}"
        for v, b in sorted(backends.items())
    )
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {NS}}}
spec:
  hosts: [{fqdn(name)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC}}]
  endpoints:{endpoints}
"""


def subsets(name: str, *versions: str) -> str:
    listed = "".join(f"\n  - {{name: {v}, labels: {{version: {v}}}}}" for v in versions)
    return f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {NS}}}
spec:
  host: {fqdn(name)}
  subsets:{listed}
"""


def virtual_service(name: str, http: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {NS}}}
spec:
  hosts: [{fqdn(name)}]
  http:
{http}"""


@dataclass
class Proxyless:
    config: ConfigDir
    control_plane: ControlPlane
    client: XdsClient
    backends: dict[str, GrpcBackend]

    def run(self, name: str, calls: int, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("wait_for_ready"):
            # a first call waits for the client's xDS round trips: generous on a loaded machine
            kwargs.setdefault("timeout", 30.0)
        return self.client.run(target(name), calls, **kwargs)

    def describe(self) -> str:
        return (
            f"client log:\n{self.client.log_tail()}\n"
            f"control plane:\n{self.control_plane.describe()}"
        )


@pytest.fixture(scope="module")
def proxyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxyless]:
    work = tmp_path_factory.mktemp("proxyless")
    backends = {
        "v1": GrpcBackend("v1"),
        "v2": GrpcBackend("v2"),
        "bad": GrpcBackend("bad", fail_with=grpc.StatusCode.UNAVAILABLE),
        "good": GrpcBackend("good"),
        "slow": GrpcBackend("slow", delay_s=3.0),
        "old": GrpcBackend("old"),
        "new": GrpcBackend("new"),
    }
    for b in backends.values():
        b.start()
    config = ConfigDir(work / "config")
    b = backends
    split = subsets("echo", "v1", "v2")
    config.write(
        "echo.yaml", service_entry("echo", {"v1": b["v1"], "v2": b["v2"]}) + "---\n" + split
    )
    config.write(
        "echo-vs.yaml",
        virtual_service(
            "echo",
            f"""  - match: [{{headers: {{x-user: {{exact: jason}}}}}}]
    route: [{{destination: {{host: {fqdn("echo")}, subset: v2}}}}]
  - route:
    - {{destination: {{host: {fqdn("echo")}, subset: v1}}, weight: 75}}
    - {{destination: {{host: {fqdn("echo")}, subset: v2}}, weight: 25}}
""",
        ),
    )
    flaky = {"bad": b["bad"], "good": b["good"]}
    for name, retries in (
        ("flaky", "{attempts: 3, retryOn: unavailable}"),
        ("flaky0", "{attempts: 0}"),
    ):
        config.write(
            f"{name}.yaml",
            service_entry(name, flaky)
            + "---\n"
            + virtual_service(
                name,
                f"""  - retries: {retries}
    route: [{{destination: {{host: {fqdn(name)}}}}}]
""",
            ),
        )
    config.write(
        "slow.yaml",
        service_entry("slow", {"slow": b["slow"]})
        + "---\n"
        + virtual_service(
            "slow",
            f"""  - timeout: 0.3s
    route: [{{destination: {{host: {fqdn("slow")}}}}}]
""",
        ),
    )
    dest = f"route: [{{destination: {{host: {fqdn('faulty')}}}}}]"
    config.write(
        "faulty.yaml",
        service_entry("faulty", {"v1": b["v1"]})
        + "---\n"
        + virtual_service(
            "faulty",
            f"""  - match: [{{headers: {{x-fault: {{exact: abort}}}}}}]
    fault: {{abort: {{httpStatus: 503, percentage: {{value: 100}}}}}}
    {dest}
  - match: [{{headers: {{x-fault: {{exact: abort-grpc}}}}}}]
    fault: {{abort: {{grpcStatus: RESOURCE_EXHAUSTED, percentage: {{value: 100}}}}}}
    {dest}
  - match: [{{headers: {{x-fault: {{exact: delay}}}}}}]
    fault: {{delay: {{fixedDelay: 2s, percentage: {{value: 100}}}}}}
    {dest}
  - {dest}
""",
        ),
    )
    config.write("moving.yaml", service_entry("moving", {"a": b["old"]}))
    three = {"v1": b["v1"], "v2": b["v2"], "good": b["good"]}
    for name, lb in (
        ("sticky", "{consistentHash: {httpHeaderName: x-key}}"),
        ("leastreq", "{simple: LEAST_REQUEST}"),
    ):
        config.write(
            f"{name}.yaml",
            service_entry(name, three)
            + f"""---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {NS}}}
spec:
  host: {fqdn(name)}
  trafficPolicy: {{loadBalancer: {lb}}}
""",
        )
    config.write(
        "labelled.yaml",
        service_entry("labelled", {"v1": b["v1"]})
        + "---\n"
        + virtual_service(
            "labelled",
            f"""  - match: [{{sourceLabels: {{app: other}}}}]
    fault: {{abort: {{grpcStatus: NOT_FOUND, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: {fqdn("labelled")}}}}}]
  - match: [{{sourceLabels: {{app: client}}, uri: {{prefix: /shoal.test.Echo/}}}}]
    fault: {{abort: {{grpcStatus: PERMISSION_DENIED, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: {fqdn("labelled")}}}}}]
  - route: [{{destination: {{host: {fqdn("labelled")}}}}}]
""",
        ),
    )
    config.write(
        "redirected.yaml",
        service_entry("redirected", {"v1": b["v1"]})
        + "---\n"
        + virtual_service(
            "redirected",
            f"""  - match: [{{queryParams: {{a: {{exact: b}}}}}}]
    fault: {{abort: {{grpcStatus: NOT_FOUND, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: {fqdn("redirected")}}}}}]
  - match: [{{headers: {{x-go: {{exact: away}}}}}}]
    redirect: {{uri: /elsewhere}}
  - route: [{{destination: {{host: {fqdn("redirected")}}}}}]
""",
        ),
    )
    cp = ControlPlane(config.path, workdir=work).start()
    client: XdsClient | None = None
    try:
        cp.wait_ready(60)
        bootstrap = work / "grpc-bootstrap.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shoal.cli.main",
                "bootstrap",
                "grpc",
                "--workload",
                "client",
                "--namespace",
                NS,
                "--control-plane",
                f"127.0.0.1:{cp.xds_port}",
                "--label",
                "app=client",
                "-o",
                str(bootstrap),
            ],
            check=True,
        )
        client = XdsClient(bootstrap, work / "client.log")
        yield Proxyless(config, cp, client, backends)
    finally:
        if client is not None:
            client.stop()
        cp.stop()
        for backend in backends.values():
            backend.stop()


def test_weighted_split_and_header_match(proxyless: Proxyless) -> None:
    # the first call waits for the client's LDS/RDS/CDS/EDS round trips
    first = proxyless.run("echo", 1, wait_for_ready=True)
    assert first["codes"] == {"OK": 1}, (first, proxyless.describe())

    n = 400
    split = proxyless.run("echo", n)
    assert split["codes"] == {"OK": n}, split["errors"]
    # gRPC picks a weighted cluster at random: one standard deviation over 400 calls is
    # ~2.2 points, so +-10 points fails only if the weights are wrong
    share_v1 = 100 * split["answers"].get("v1", 0) / n
    assert abs(share_v1 - 75) <= 10, split["answers"]
    assert split["answers"].get("v1", 0) + split["answers"].get("v2", 0) == n

    jason = proxyless.run("echo", 50, metadata={"x-user": "jason"})
    assert jason["answers"] == {"v2": 50}, jason
    other = proxyless.run("echo", 50, metadata={"x-user": "maria"})
    assert other["answers"].get("v1", 0) > 20, other  # back to the 75/25 split


def test_retry_on_unavailable_reaches_the_other_backend(proxyless: Proxyless) -> None:
    # both services hold a backend that always answers UNAVAILABLE and one that answers;
    # round robin alternates between them, so the retry of a failed call lands on the good one
    retried = proxyless.run("flaky", 40, wait_for_ready=True)
    assert retried["codes"] == {"OK": 40}, (retried, proxyless.describe())
    assert retried["answers"] == {"good": 40}

    bad_before = proxyless.backends["bad"].calls
    plain = proxyless.run("flaky0", 40, wait_for_ready=True)
    # without retries (attempts: 0) about half the calls fail
    assert plain["codes"].get("UNAVAILABLE", 0) >= 10, plain
    assert plain["codes"].get("OK", 0) >= 10, plain
    assert proxyless.backends["bad"].calls > bad_before


def test_route_timeout_gives_deadline_exceeded(proxyless: Proxyless) -> None:
    # the backend takes 3 s; the VirtualService's timeout is 0.3 s, the client's deadline 20 s
    first = proxyless.run("slow", 1, timeout=20.0, wait_for_ready=True)  # (xDS round trips)
    assert first["codes"] == {"DEADLINE_EXCEEDED": 1}, (first, proxyless.describe())
    result = proxyless.run("slow", 3, timeout=20.0)
    assert result["codes"] == {"DEADLINE_EXCEEDED": 3}, result
    assert max(result["elapsed"]) < 2.5, result["elapsed"]


def test_fault_injection_abort_and_delay(proxyless: Proxyless) -> None:
    plain = proxyless.run("faulty", 5, wait_for_ready=True)
    assert plain["codes"] == {"OK": 5}, (plain, proxyless.describe())

    aborted = proxyless.run("faulty", 10, metadata={"x-fault": "abort"})
    # HTTP 503 maps to UNAVAILABLE (gRPC's HTTP-to-status mapping)
    assert aborted["codes"] == {"UNAVAILABLE": 10}, aborted
    assert aborted["answers"] == {}
    exhausted = proxyless.run("faulty", 10, metadata={"x-fault": "abort-grpc"})
    assert exhausted["codes"] == {"RESOURCE_EXHAUSTED": 10}, exhausted

    delayed = proxyless.run("faulty", 3, metadata={"x-fault": "delay"})
    assert delayed["codes"] == {"OK": 3}, delayed
    assert min(delayed["elapsed"]) >= 1.95, delayed["elapsed"]
    # the plain route is not delayed
    quick = proxyless.run("faulty", 3)
    assert max(quick["elapsed"]) < 1.5, quick["elapsed"]


def test_endpoint_change_reaches_the_running_client(proxyless: Proxyless) -> None:
    before = proxyless.run("moving", 10, wait_for_ready=True)
    assert before["answers"] == {"old": 10}, (before, proxyless.describe())

    proxyless.config.write("moving.yaml", service_entry("moving", {"a": proxyless.backends["new"]}))

    def moved() -> bool:
        return proxyless.run("moving", 5)["answers"] == {"new": 5}

    wait_until(
        moved, 20, interval=0.2, what="calls to reach the new endpoint", describe=proxyless.describe
    )
    assert proxyless.client.proc.poll() is None  # the same client process throughout


def test_consistent_hash_keeps_a_key_on_one_backend(proxyless: Proxyless) -> None:
    # DestinationRule consistentHash -> RING_HASH and a header hash policy (gRFC A42)
    first = proxyless.run("sticky", 1, wait_for_ready=True, metadata={"x-key": "k"})
    assert first["codes"] == {"OK": 1}, (first, proxyless.describe())
    seen = set()
    for key in range(16):
        result = proxyless.run("sticky", 10, metadata={"x-key": f"user-{key}"})
        assert result["codes"] == {"OK": 10}, result
        assert len(result["answers"]) == 1, (key, result["answers"])  # one backend per key
        seen.update(result["answers"])
    # 16 keys on a 1024-entry ring over 3 backends: all on one would be a broken hash
    assert len(seen) >= 2, seen


def test_least_request_is_served_as_round_robin_not_refused(proxyless: Proxyless) -> None:
    # grpcio NACKs lb_policy LEAST_REQUEST ("LB policy is not supported"): shoal sends
    # ROUND_ROBIN, so the client is served and holds no NACK
    result = proxyless.run("leastreq", 30, wait_for_ready=True)
    assert result["codes"] == {"OK": 30}, (result, proxyless.describe())
    assert set(result["answers"]) == {"v1", "v2", "good"}
    nacks = [
        (p["node"], kind, st["last_nack"])
        for p in proxyless.control_plane.syncz()
        for kind, st in p["types"].items()
        if st["last_nack"] is not None
    ]
    assert nacks == []


def test_query_routes_are_skipped_and_a_redirect_fails_with_unavailable(
    proxyless: Proxyless,
) -> None:
    # not supported by gRPC: a route whose action is not `route` fails the call (gRFC A28)
    # (the first route matches a query parameter: gRPC has none and skips that route)
    plain = proxyless.run("redirected", 2, wait_for_ready=True)
    assert plain["codes"] == {"OK": 2}, (plain, proxyless.describe())
    away = proxyless.run("redirected", 2, metadata={"x-go": "away"})
    assert away["codes"] == {"UNAVAILABLE": 2}, away
    assert "inappropriate action" in away["errors"][0]


def test_source_labels_and_the_grpc_path_select_the_route(proxyless: Proxyless) -> None:
    # the client's labels come from its bootstrap (--label app=client): the route for
    # app=other is not its own, the one for app=client on the /shoal.test.Echo/ path is
    result = proxyless.run("labelled", 3, wait_for_ready=True)
    assert result["codes"] == {"PERMISSION_DENIED": 3}, (result, proxyless.describe())


def test_proxy_status_lists_the_client_synced(proxyless: Proxyless) -> None:
    # each xds:/// target is a stream of its own (grpcio keeps an xDS client per target)
    assert proxyless.run("echo", 1, wait_for_ready=True)["codes"] == {"OK": 1}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "shoal.cli.main",
            "proxy-status",
            "--control-plane",
            proxyless.control_plane.admin_url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("client.default")]
    assert rows, out
    # the echo stream has every type; every stream has LDS, none holds a NACK
    assert ["client.default", "SYNCED", "SYNCED", "SYNCED", "SYNCED"] in [r[:5] for r in rows], out
    assert all("NACK" not in r for r in rows), out
