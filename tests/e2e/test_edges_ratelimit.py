"""LocalRateLimit: a token bucket on the selected workload's inbound listener (real Envoy)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.edges import app_sidecar_bootstrap, get
from harness.envoy import EnvoyProcess
from harness.load import fire
from harness.mesh import Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _limit(app: str) -> str:
    return f"""apiVersion: shoal.dev/v1alpha1
kind: LocalRateLimit
metadata: {{name: {app}, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: {app}}}}}
  maxTokens: 5
  tokensPerFill: 5
  fillInterval: 60s
"""


def test_burst_beyond_the_bucket_gets_429(
    mesh: Mesh,
    backend_factory: Callable[[str], Backend],
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
) -> None:
    app = backend_factory("ratings")
    cp = mesh.start()
    bootstrap, _, inbound = app_sidecar_bootstrap(cp.xds_port, "ratings", app.port)
    envoy = envoy_factory(bootstrap, name="ratings")
    wait_synced(cp, 1, 10)

    # baseline: no policy, a burst of 20 all reach the app
    assert fire(inbound, "ratings", 20) == {"status:200": 20, "ratings": 20}

    config_dir.write("limit-other.yaml", _limit("reviews"))  # selects someone else
    config_dir.write("limit.yaml", _limit("ratings"))
    wait_until(
        lambda: fire(inbound, "ratings", 1)["status:429"] == 1,
        10,
        interval=0.2,
        what="the rate limit to refuse a request",
        describe=envoy.describe,
    )
    status, headers, _ = get(inbound, "ratings")
    assert status == 429 and headers.get("x-local-rate-limit") == "true", headers
    before = app.requests
    counts = fire(inbound, "ratings", 20)
    # the bucket (5 tokens, refilled once a minute) is spent: the whole burst is refused
    assert counts["status:429"] == 20, counts
    assert app.requests == before  # refused in the sidecar: the app never saw them
