"""The data plane outlives the control plane and resyncs when it returns.

Two Envoys (one state-of-the-world, one delta) carry steady load while the control plane is
SIGKILLed and restarted on the same ports. No request may fail, and both Envoys must be fully
ACKed by the new process within 2 s of its /ready.
"""

from __future__ import annotations

import time

import pytest

from harness.controlplane import wait_synced
from harness.load import SteadyLoad
from harness.mesh import HOST, VS_FILE, Mesh, virtual_service
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def test_kill_and_restart_control_plane(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 100})
    sotw = mesh.sidecar("productpage", api_type="GRPC")
    delta = mesh.sidecar("details", api_type="DELTA_GRPC")
    mesh.synced()
    for sidecar in (sotw, delta):
        mesh.wait_routes(sidecar, {"v1"})

    loads = [SteadyLoad(s.outbound_port, HOST, rps=100).start() for s in (sotw, delta)]
    try:
        time.sleep(0.3)
        cp.kill()
        # Long enough for both Envoys to notice and start retrying the stream.
        time.sleep(1.0)
        cp.start()
        ready_at = cp.wait_ready()
        # The bootstrap caps Envoy's jittered reconnect backoff at 0.5 s (envoy_grpc.retry_policy).
        wait_synced(cp, 2, timeout=10.0)
        resync = time.monotonic() - ready_at
        time.sleep(0.3)
    finally:
        results = [load.stop() for load in loads]

    assert resync <= 2.0, resync
    for result in results:
        assert result.total >= 150, result.summary()
        assert result.failures == [], result.summary()
        assert set(result.by_backend) == {"v1"}, result.summary()

    # The new process drives both Envoys: a change now reaches each of them.
    mesh.config.write(VS_FILE, virtual_service({"v2": 100}))
    for sidecar in (sotw, delta):
        mesh.wait_routes(sidecar, {"v2"}, timeout=5)
    wait_until(lambda: len(cp.syncz()) == 2, 2, what="both proxies still in syncz")
