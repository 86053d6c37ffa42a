"""`shoal up --secure` end to end: certificates rotate under load, secrets never leak.

Two backend replicas and a client, each with an agent that holds a 20-second certificate
(renewed at about 10 s): the client's sidecar calls the backends over mTLS for ~25 s with zero
failed requests. Then every log line and every `/debug` view is searched for the private keys
Envoy holds, the CA keys and the bootstrap tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json, request
from harness.load import SteadyLoad
from harness.meshyaml import backend_and_client
from harness.up import ShoalUp
from harness.upruns import run_mesh

pytestmark = pytest.mark.envoy

MESH = backend_and_client(accounts=True)


@pytest.fixture
def secure_up(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ShoalUp]:
    extra = ["--secure", "--ca-dir", str(tmp_path / "ca"), "--cert-ttl", "20"]
    yield from run_mesh(tmp_path, request, MESH, name="secure-up", extra_args=extra)


def _certs(replica: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = get_json(
        f"http://127.0.0.1:{replica['ports']['health']}/debug/certs", timeout=2
    )
    return data


def _token_files(up: ShoalUp) -> list[Path]:
    out = []
    for proc in up.track():
        argv = list(proc.argv)
        if "--token-file" in argv:
            out.append(Path(argv[argv.index("--token-file") + 1]))
    return out


def test_secure_mesh_rotates_under_load_and_never_shows_a_secret(
    secure_up: ShoalUp, tmp_path: Path
) -> None:
    up = secure_up
    workloads = up.wait_ready(3, timeout=60)
    client = next(r for r in workloads if r["replica"] == "client-0")
    files = _token_files(up)
    assert len(files) == 3  # one per replica (replicas of one identity may share a token)
    tokens = {f.read_text().strip() for f in files}
    first = {r["replica"]: _certs(r)["certificate"]["serial"] for r in workloads}

    load = SteadyLoad(client["ports"]["outbound"], "backend", rps=60, workers=3).start()
    try:
        time.sleep(25)
    finally:
        result = load.stop()
    print(result.summary())
    assert result.failures == [], result.summary()
    assert result.total > 500

    certs = {r["replica"]: _certs(r) for r in up.workloads()}
    print(json.dumps(certs, indent=1))
    for name, info in certs.items():
        assert info["identity"].endswith(f"/sa/{name.split('-')[0]}")
        assert info["renewals"] >= 2 and info["failures"] == 0, info
        assert info["certificate"]["serial"] != first[name]
        # the certificate Envoy serves now is the agent's latest: pushed without a restart
    backend = next(r for r in workloads if r["replica"] == "backend-0")
    dump = get_json(
        f"http://127.0.0.1:{backend['ports']['admin']}/config_dump?resource=dynamic_active_secrets"
    )
    names = {c["name"] for c in dump["configs"]}
    assert names == {"default", "ROOTCA"}
    # mTLS between the sidecars: the backends' inbound listeners completed TLS handshakes
    stats = request(
        "GET", f"http://127.0.0.1:{backend['ports']['admin']}/stats?filter=ssl.handshake"
    )[1].decode()
    assert any(
        int(line.rsplit(":", 1)[1]) > 0 for line in stats.splitlines() if "listener" in line
    ), stats

    # nothing secret in any log or /debug view
    views = [f"{up.admin_url}/debug/{v}" for v in ("syncz", "config", "ca", "workloads")]
    views += [f"http://127.0.0.1:{r['ports']['health']}/debug/certs" for r in workloads]
    texts = {url: request("GET", url, timeout=2)[1].decode() for url in views}
    texts["shoal up log"] = up.log_text()
    ca_keys = [(tmp_path / "ca" / n).read_text() for n in ("root-key.pem", "ca-key.pem")]
    assert "PRIVATE KEY" in ca_keys[0]
    for where, text in texts.items():
        assert text, where
        assert "PRIVATE KEY" not in text, where
        for secret in [*tokens, *ca_keys]:
            assert secret.strip() not in text, f"a secret shows in {where}"
