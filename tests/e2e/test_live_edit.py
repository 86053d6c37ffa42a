"""Editing a file in the config directory changes routing live, with nothing restarted."""

from __future__ import annotations

import pytest

from harness.mesh import VS_FILE, Mesh, virtual_service

pytestmark = pytest.mark.envoy


def test_edit_changes_routing_without_restart(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})
    assert cp.proc is not None
    cp_pid, envoy_pid = cp.proc.pid, sidecar.envoy.pid
    version_before = cp.config_status()["version"]

    mesh.config.write(VS_FILE, virtual_service({"v2": 100}))

    mesh.wait_routes(sidecar, {"v2"}, timeout=5)
    assert cp.config_status()["version"] != version_before
    # Same processes, still running: the change came through the watcher and xDS.
    assert cp.proc.pid == cp_pid and cp.proc.poll() is None and cp.starts == 1
    assert sidecar.envoy.pid == envoy_pid and sidecar.envoy.proc is not None
    assert sidecar.envoy.proc.poll() is None
    mesh.synced()
