"""What expires in a secure Kubernetes mesh is replaced in time, with real agents and Envoys.

`shoal control-plane --kubernetes --secure` on the fake API server (identity by TokenReview),
real `shoal agent` processes with short-lived certificates:

1. The projected service-account token rotates, as the kubelet rotates it: the agent's next
   certificate requests carry the new token, and Envoy is hot-restarted onto a bootstrap that
   holds it, so once the old token has expired, renewals still succeed and an ADS reconnect
   (the control plane restarted) is accepted.
2. The control plane's own xDS/CA serving certificate, given a few seconds of life, is renewed
   at half-life: once the first one has expired, an agent connecting anew handshakes with the
   renewed one, and the stream of an Envoy connected before never broke.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json, request
from harness.agentproc import Agent
from harness.controlplane import ControlPlane, wait_synced
from harness.kubeapi import KubeAPIThread
from harness.kubecp import install_crds, namespace, service
from harness.wait import wait_until
from shoal.kube.tokenreview import token_expiry

pytestmark = pytest.mark.envoy

NS = "shop"
SA = "reviews"
AUDIENCE = "istio-ca"
SHORT_TOKEN_S = 15  # the agent must start, and use it, within this on a loaded machine

AgentFactory = Callable[..., Agent]


def _seed(api: KubeAPIThread) -> None:
    install_crds(api.server)
    api.server.create(None, namespace(NS))
    api.server.create(
        None,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": NS}},
    )


def _write_token(path: Path, token: str) -> None:
    """As the kubelet's atomic writer does: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(token)
    fresh.chmod(0o600)
    os.replace(fresh, path)


@pytest.fixture
def mesh(kubeapi: KubeAPIThread, tmp_path: Path) -> Iterator[tuple[KubeAPIThread, Path]]:
    kubeapi.call(_seed, kubeapi)
    yield kubeapi, tmp_path / "ca"


def _control_plane(api: KubeAPIThread, tmp_path: Path, *extra: str) -> ControlPlane:
    kubeconfig = api.kubeconfig(tmp_path / "cp.kubeconfig")
    return ControlPlane(
        None, workdir=tmp_path, name="cp",
        extra_args=["--kubernetes", "--kubeconfig", str(kubeconfig), "--secure",
                    "--ca-dir", str(tmp_path / "ca"), "--replica-name", "cp-0",
                    "--lease-ttl", "3", "--lease-renew", "2", "--lease-retry", "0.3", *extra],
    )  # fmt: skip


def _agent(
    agents: AgentFactory, cp: ControlPlane, token_file: Path, ca_dir: Path, name: str
) -> Agent:
    return agents(
        cp.xds_port,
        "--namespace", NS, "--service-account", SA,
        "--token-file", str(token_file), "--ca-root", str(ca_dir / "trusted-roots.pem"),
        name=name,
    )  # fmt: skip


def _certs(agent: Agent) -> dict[str, Any]:
    out: dict[str, Any] = get_json(agent.health_url + "/debug/certs")
    return out


def _stat(agent: Agent, name: str) -> int:
    """One counter or gauge of the agent's Envoy."""
    status, body = request("GET", f"http://127.0.0.1:{agent.admin}/stats?filter=^{name}$")
    assert status == 200, body
    values = [int(v) for k, _, v in (line.partition(": ") for line in body.decode().splitlines())
              if k == name]  # fmt: skip
    assert len(values) == 1, body
    return values[0]


def _clusters(agent: Agent) -> list[str]:
    _, body = request("GET", f"http://127.0.0.1:{agent.admin}/clusters?format=json")
    return [c["name"] for c in json.loads(body)["cluster_statuses"]]


def _bootstrap_token(agent: Agent) -> str:
    """The token in the bootstrap of the Envoy epoch running now."""
    boot = json.loads(Path(agent.debug()["bootstrap"]).read_text())
    (meta,) = boot["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"]
    return str(meta["value"]).removeprefix("Bearer ")


def test_a_rotated_token_is_used_for_renewals_and_xds_reconnects(
    mesh: tuple[KubeAPIThread, Path], tmp_path: Path, agents: AgentFactory
) -> None:
    api, ca_dir = mesh
    with _control_plane(api, tmp_path, "--cert-ttl", "4") as cp:
        cp.wait_ready(timeout=30)
        token_file = tmp_path / "istio-token"
        old = api.issue_token(NS, SA, (AUDIENCE,), expiration_seconds=SHORT_TOKEN_S)
        _write_token(token_file, old)
        agent = _agent(agents, cp, token_file, ca_dir, "reviews-0")
        wait_synced(cp, 1, timeout=20)
        assert _certs(agent)["identity"] == f"spiffe://cluster.local/ns/{NS}/sa/{SA}"

        # the kubelet rotates the token before it expires
        new = api.issue_token(NS, SA, (AUDIENCE,), expiration_seconds=3600)
        _write_token(token_file, new)
        wait_until(lambda: agent.debug()["epoch"] == 1, 30, what="Envoy hot-restarted")
        assert _bootstrap_token(agent) == new
        wait_synced(cp, 1, timeout=20)

        # once the old token has expired ...
        expiry = token_expiry(old)
        assert expiry is not None
        time.sleep(max(0.0, expiry - time.time()) + 1.0)
        # ... certificates are still renewed (each request reads the token file anew)
        before = _certs(agent)
        wait_until(
            lambda: _certs(agent)["renewals"] >= before["renewals"] + 2,
            20,
            what="two certificate renewals after the old token expired",
        )
        assert _certs(agent)["failures"] == before["failures"], _certs(agent)
        # ... and an ADS reconnect is accepted: the control plane restarts, with no cached
        # review of anything, and Envoy comes back with the token of its bootstrap
        cp.kill()
        cp.start()
        cp.wait_ready(timeout=30)
        wait_synced(cp, 1, timeout=30)
        assert agent.debug()["epoch"] == 1  # the same Envoy, reconnected


def test_the_serving_certificate_is_renewed_without_dropping_streams(
    mesh: tuple[KubeAPIThread, Path], tmp_path: Path, agents: AgentFactory
) -> None:
    api, ca_dir = mesh
    lifetime_s = 6.0
    with _control_plane(api, tmp_path, "--serving-cert-ttl", str(lifetime_s)) as cp:
        cp.wait_ready(timeout=30)
        first = get_json(cp.admin_url + "/debug/ca")["serving_certificate"]
        token_file = tmp_path / "istio-token"
        _write_token(token_file, api.issue_token(NS, SA, (AUDIENCE,), expiration_seconds=3600))
        early = _agent(agents, cp, token_file, ca_dir, "early-0")
        wait_synced(cp, 1, timeout=20)
        streams = _stat(early, "cluster.xds-grpc.upstream_cx_total")

        # past the first certificate's end
        ends = dt.datetime.fromisoformat(first["not_after"]).timestamp()
        time.sleep(max(0.0, ends - time.time()) + 1.0)

        # a new connection handshakes with the renewed certificate
        late = _agent(agents, cp, token_file, ca_dir, "late-0")
        wait_synced(cp, 2, timeout=20)
        now = get_json(cp.admin_url + "/debug/ca")["serving_certificate"]
        assert now["renewals"] >= 1 and now["serial"] != first["serial"], (first, now)
        assert _certs(late)["certificate"] is not None

        # the early Envoy's stream is the one it opened before the renewal, and still serves
        api.create(None, service("ratings", NS))
        wait_until(
            lambda: any("ratings" in c for c in _clusters(early)),
            15,
            what="a change pushed over the early Envoy's stream",
        )
        assert _stat(early, "cluster.xds-grpc.upstream_cx_total") == streams
        assert _stat(early, "control_plane.connected_state") == 1
