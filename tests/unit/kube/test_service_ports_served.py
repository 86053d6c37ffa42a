"""The control plane's Service exposes exactly the ports the control plane listens on.

`shoal control-plane` runs with the very arguments of `shoal install`'s Deployment (only the
CA directory and the kubeconfig differ: a temporary CA, and the standalone fake API server)
in a network namespace of its own, where the manifest's fixed ports (15012, 15014, 15017) are
free. The TCP ports its process listens on (its own sockets in /proc, not the fake's) must be
the Service's target ports and the container's ports: nothing it serves left unexposed, and
nothing exposed that it does not serve.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shoal.kube.manifests import manifests

ROOT = Path(__file__).resolve().parents[3]
SHOAL = ROOT / ".venv" / "bin" / "shoal"

if os.geteuid() != 0 or shutil.which("ip") is None:  # CI runs as root with iproute2
    pytest.fail("this test needs root and `ip` (network namespaces)", pytrace=False)


def _one(kind: str) -> dict[str, Any]:
    (obj,) = [o for o in manifests() if o["kind"] == kind]
    return obj


def _listening(pid: int) -> set[int]:
    """TCP ports on which process `pid` itself holds a listening socket."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as fh:
            next(fh)
            for line in fh:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_service_exposes_every_port_the_control_plane_listens_on(tmp_path: Path) -> None:
    container = _one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = list(container["args"])
    args[args.index("--ca-dir") + 1] = str(tmp_path / "ca")
    service_targets = {p["targetPort"] for p in _one("Service")["spec"]["ports"]}
    container_ports = {p["containerPort"] for p in container["ports"]}
    kubeconfig = tmp_path / "kubeconfig"
    netns = f"shoalports{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "procs.log"
    try:
        in_ns = ["ip", "netns", "exec", netns]
        subprocess.run([*in_ns, "ip", "link", "set", "lo", "up"], check=True)
        with open(log, "ab") as out:
            procs.append(subprocess.Popen(
                [*in_ns, sys.executable, "-m", "tests.harness.kubeapi", "--port", "6443",
                 "--kubeconfig", str(kubeconfig)],
                cwd=ROOT, stdout=out, stderr=out,
            ))  # fmt: skip
            deadline = time.monotonic() + 60
            while not kubeconfig.exists():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            procs.append(subprocess.Popen(
                [*in_ns, str(SHOAL), *args, "--kubeconfig", str(kubeconfig)],
                cwd=tmp_path, stdout=out, stderr=out,
            ))  # fmt: skip
        cp = procs[-1]
        deadline = time.monotonic() + 90
        while not service_targets <= _listening(cp.pid):
            assert cp.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (_listening(cp.pid), log.read_text())
            time.sleep(0.2)
        time.sleep(1.0)  # anything it would open after its last announced port
        served = _listening(cp.pid)
        assert served == service_targets, (served, service_targets)
        assert served == container_ports, (served, container_ports)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        subprocess.run(["ip", "netns", "del", netns], check=False)
