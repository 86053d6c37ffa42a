"""The fake API server as README tells people to run it: ``python -m tests.harness.kubeapi``,
and kubectl at ``--server=http://127.0.0.1:N`` with any token; and its HTTPS mode, trusted
through the CA in the kubeconfig it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.kubeapi import KubeAPIThread
from harness.kubectl import KUBECTL, Kubectl
from harness.ports import free_port

REPO = Path(__file__).resolve().parents[3]


def test_python_m_serves_kubectl_with_any_token(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.kubeapi", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert (
            proc.stdout.readline().strip()
            == f"fake Kubernetes API server on http://127.0.0.1:{port}"
        )
        argv = [
            KUBECTL,
            f"--server=http://127.0.0.1:{port}",
            "--token=anything",
            f"--cache-dir={tmp_path / 'cache'}",
            "get",
            "namespaces",
            "-o",
            "name",
        ]
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert "namespace/default" in out.stdout.split()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


def test_tls_mode_is_trusted_through_the_kubeconfig(tmp_path: Path) -> None:
    with KubeAPIThread(tls=True) as api:
        assert api.url.startswith("https://127.0.0.1:")
        kubectl = Kubectl(api.kubeconfig(tmp_path / "kc"), tmp_path)
        assert "default" in kubectl("get", "ns")
