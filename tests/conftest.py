"""Shared fixtures: config dirs, backends, Envoys and control planes that always get cleaned up.

Factories return started objects and stop them at teardown in reverse order of creation. When a
test fails, the teardown prints the tail of every Envoy log and control-plane stderr it started,
so the failure report says what the peers saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from harness.agentproc import Agent, AgentFactory
from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.envoy import EnvoyProcess
from harness.kubeapi import KubeAPIThread
from harness.kubectl import Kubectl
from harness.mesh import Mesh
from harness.secmesh import SecureMesh
from harness.upruns import call_failed

# trio (pulled in by selenium for the dashboard test) registers a Hypothesis plugin that warns
# at Hypothesis' import; with warnings as errors that fails the run wherever Hypothesis is first
# imported (even in the terminal summary). shoal's tests use no trio and no Hypothesis plugins.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so fixtures can tell, at teardown, if the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every e2e test starts real Envoys: select or deselect them with `-m envoy`.
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.envoy)


@pytest.fixture
def config_dir(tmp_path: Path) -> ConfigDir:
    return ConfigDir(tmp_path / "config")


@pytest.fixture
def backend_factory() -> Iterator[Callable[[str], Backend]]:
    started: list[Backend] = []

    def make(name: str) -> Backend:
        backend = Backend(name).start()
        started.append(backend)
        return backend

    yield make
    for backend in reversed(started):
        backend.stop()


EnvoyFactory = Callable[..., EnvoyProcess]


@pytest.fixture
def envoy_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[EnvoyFactory]:
    started: list[EnvoyProcess] = []

    def make(
        bootstrap: dict[str, Any] | str,
        name: str = "envoy",
        wait: Literal["ready", "admin"] = "ready",
    ) -> EnvoyProcess:
        envoy = EnvoyProcess(bootstrap, tmp_path, name=f"{name}-{len(started)}", wait=wait)
        # Registered before start, so a start that times out is still reported and reaped.
        started.append(envoy)
        return envoy.start()

    yield make
    failed = call_failed(request)
    for envoy in reversed(started):
        if failed:
            print(envoy.describe())
        envoy.stop()


ControlPlaneFactory = Callable[..., ControlPlane]


@pytest.fixture
def control_plane_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ControlPlaneFactory]:
    started: list[ControlPlane] = []

    def make(
        config: ConfigDir,
        *,
        test_hooks: bool = False,
        wait: bool = True,
        extra_args: Sequence[str] = (),
    ) -> ControlPlane:
        cp = ControlPlane(
            config.path,
            workdir=tmp_path,
            test_hooks=test_hooks,
            name=f"cp-{len(started)}",
            extra_args=extra_args,
        )
        started.append(cp)
        cp.start()
        if wait:
            cp.wait_ready()
        return cp

    yield make
    failed = call_failed(request)
    for cp in reversed(started):
        if failed:
            print(cp.describe())
        cp.stop()


@pytest.fixture
def mesh(
    config_dir: ConfigDir,
    backend_factory: Callable[[str], Backend],
    envoy_factory: EnvoyFactory,
    control_plane_factory: ControlPlaneFactory,
) -> Mesh:
    return Mesh(config_dir, backend_factory, envoy_factory, control_plane_factory)


@pytest.fixture
def secmesh(
    config_dir: ConfigDir,
    envoy_factory: Callable[..., EnvoyProcess],
    control_plane_factory: Callable[..., ControlPlane],
) -> Iterator[SecureMesh]:
    out = SecureMesh(config_dir, envoy_factory, control_plane_factory(config_dir))
    yield out
    out.stop()


@pytest.fixture
def kubeapi() -> Iterator[KubeAPIThread]:
    """The fake Kubernetes API server (harness/kubeapi) on a free port, stopped at teardown."""
    with KubeAPIThread() as api:
        yield api


@pytest.fixture
def kubeconfig(kubeapi: KubeAPIThread, tmp_path: Path) -> Path:
    return kubeapi.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """The real kubectl pointed at ``kubeapi``, with its own discovery cache."""
    return Kubectl(kubeconfig, tmp_path)


@pytest.fixture
def agents(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[AgentFactory]:
    """Real `shoal agent` processes; at teardown each is stopped and the process table checked."""
    started: list[Agent] = []

    def make(xds_port: int, *extra: str, name: str = "hot-0") -> Agent:
        agent = Agent(tmp_path, xds_port, name=name, extra_args=extra)
        started.append(agent)
        return agent.start()

    yield make
    failed = call_failed(request)
    for agent in started:
        if failed:
            print(f"--- {agent.name} log tail ---\n{agent.log_tail()}")
        agent.stop()
