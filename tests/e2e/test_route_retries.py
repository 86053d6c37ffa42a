"""Retries, timeouts and the mesh-wide default retry policy, through a real Envoy sidecar.

Each test first measures the baseline (the behaviour without the policy), then writes the
policy and measures again, so a policy that generates but does nothing fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.mesh import Mesh, Sidecar
from harness.policies import call, host, service_entry, statuses, virtual_service
from harness.sample import SampleProcess
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

SampleFactory = Callable[..., SampleProcess]
ROUTE_FILE = "route.yaml"


@pytest.fixture
def samples(tmp_path: Path) -> Iterator[SampleFactory]:
    started: list[SampleProcess] = []

    def make(name: str, *args: str, env: dict[str, str] | None = None) -> SampleProcess:
        sample = SampleProcess(name, tmp_path, *args, env=env)
        started.append(sample)
        return sample.start()

    yield make
    for sample in reversed(started):
        sample.stop()


def start(mesh: Mesh, text: str) -> Sidecar:
    mesh.config.write(ROUTE_FILE, text)
    mesh.cp = mesh._cp_factory(mesh.config)
    sidecar = mesh.sidecar()
    mesh.synced()
    return sidecar


def _route(name: str, extra: str = "") -> str:
    return f"- route:\n  - destination: {{host: {host(name)}}}\n{extra}"


def test_retries_hide_a_flaky_backend(mesh: Mesh, samples: SampleFactory) -> None:
    # 500, not 503: the mesh default policy retries 503 by itself (see the next test)
    flaky = samples("flaky", "--error-rate", "0.25", "--error-code", "500")
    se = service_entry("flaky", {"v1": flaky.port})
    sidecar = start(mesh, se + "---\n" + virtual_service("flaky", _route("flaky")))
    wait_until(lambda: call(sidecar.outbound_port, host("flaky")).status in (200, 500), 10)

    baseline = statuses(sidecar.outbound_port, host("flaky"), 400)
    assert 0.65 <= baseline[200] / 400 <= 0.85, baseline

    retries = "  retries: {attempts: 3, retryOn: 5xx}\n"
    mesh.config.write(ROUTE_FILE, se + "---\n" + virtual_service("flaky", _route("flaky", retries)))
    stat = "cluster.outbound|80||flaky.default.svc.cluster.local.upstream_rq_retry"
    wait_until(lambda: statuses(sidecar.outbound_port, host("flaky"), 20)[200] == 20, 10)
    before = sidecar.envoy.stat(stat)

    after = statuses(sidecar.outbound_port, host("flaky"), 1000)
    assert after[200] >= 990, after
    # about a quarter of the requests needed at least one retry
    assert sidecar.envoy.stat(stat) - before >= 150


def test_retry_lands_on_another_host(mesh: Mesh, samples: SampleFactory) -> None:
    good = samples("pair", "--version", "v1")
    bad = samples("pair", "--version", "v2", "--error-rate", "1", "--error-code", "500")
    se = service_entry("pair", {"v1": good.port, "v2": bad.port}, lb="RANDOM")

    def vs(ignore_previous: str) -> str:
        retries = f"  retries: {{attempts: 1, retryOn: 5xx{ignore_previous}}}\n"
        return se + "---\n" + virtual_service("pair", _route("pair", retries))

    # baseline: a retry may pick the failing host again (RANDOM: about a quarter fail)
    sidecar = start(mesh, vs(", retryIgnorePreviousHosts: false"))
    wait_until(lambda: statuses(sidecar.outbound_port, host("pair"), 40)[500] > 0, 10)
    baseline = statuses(sidecar.outbound_port, host("pair"), 200)
    assert baseline[500] >= 20, baseline

    mesh.config.write(ROUTE_FILE, vs(""))  # Istio's default: previous_hosts predicate
    wait_until(lambda: statuses(sidecar.outbound_port, host("pair"), 60)[200] >= 58, 10)
    # A retry picks another host unless RANDOM draws the failing one 5 times in a row
    # (host_selection_retry_max_attempts): ~1.5 % of requests, against ~25 % without it.
    after = statuses(sidecar.outbound_port, host("pair"), 200)
    assert after[200] >= 192, after


def test_timeout_and_per_try_timeout(mesh: Mesh, samples: SampleFactory) -> None:
    slow = samples("slow", "--latency", "2s")
    se = service_entry("slow", {"v1": slow.port})
    sidecar = start(mesh, se + "---\n" + virtual_service("slow", _route("slow")))
    wait_until(lambda: call(sidecar.outbound_port, host("slow")).status == 200, 10)

    baseline = call(sidecar.outbound_port, host("slow"))
    assert baseline.status == 200 and baseline.seconds >= 1.9, baseline

    mesh.config.write(
        ROUTE_FILE, se + "---\n" + virtual_service("slow", _route("slow", "  timeout: 0.5s\n"))
    )
    wait_until(lambda: call(sidecar.outbound_port, host("slow")).status == 504, 15)
    answer = call(sidecar.outbound_port, host("slow"))
    # Envoy's timer may fire a millisecond early by our clock
    assert answer.status == 504 and 0.49 <= answer.seconds <= 0.7, answer

    per_try = "  retries: {attempts: 2, perTryTimeout: 0.3s, retryOn: 5xx}\n"
    mesh.config.write(ROUTE_FILE, se + "---\n" + virtual_service("slow", _route("slow", per_try)))
    stat = "cluster.outbound|80||slow.default.svc.cluster.local.upstream_rq_per_try_timeout"
    wait_until(lambda: call(sidecar.outbound_port, host("slow")).seconds < 1.5, 15)
    before = sidecar.envoy.stat(stat)
    answer = call(sidecar.outbound_port, host("slow"))
    # three tries of 0.3 s (plus back-off between them), then 504
    assert answer.status == 504 and 0.9 <= answer.seconds <= 1.4, answer
    assert sidecar.envoy.stat(stat) - before == 3


def test_mesh_default_retry_policy_can_be_turned_off(mesh: Mesh, samples: SampleFactory) -> None:
    flaky = samples("flaky", "--error-rate", "0.25", "--error-code", "503")
    se = service_entry("flaky", {"v1": flaky.port})
    sidecar = start(mesh, se)  # no VirtualService: the default route with the default policy
    wait_until(lambda: call(sidecar.outbound_port, host("flaky")).status in (200, 503), 10)

    default = statuses(sidecar.outbound_port, host("flaky"), 400)
    # 2 retries on 503: 0.25^3 = 1.6 % fail
    assert default[200] >= 380, default

    mesh.config.write(
        "mesh.yaml",
        """apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: default}
spec:
  defaultHttpRetryPolicy: {attempts: 0}
""",
    )
    wait_until(lambda: statuses(sidecar.outbound_port, host("flaky"), 100)[503] >= 10, 15)
    off = statuses(sidecar.outbound_port, host("flaky"), 400)
    assert 0.65 <= off[200] / 400 <= 0.85, off
