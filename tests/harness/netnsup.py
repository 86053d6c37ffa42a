"""`shoal up --netns` in tests: the run's flags, calls from inside a pod, and what it left.

A run's pods are named after its pid (`shoal-PID-REPLICA`, bridge `shbPID`, host veth ends
`shvPID-N`, state file `podnet-PID.json`), so `left_behind` can list exactly what one run
left: namespaces, links, its state file, /etc/netns entries, its Envoys' /dev/shm files and
its host FORWARD rule (added where br_netfilter sends bridged traffic through iptables).
Needs root; `require_root` fails the test (never skips) where it cannot run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.up import ShoalUp
from harness.wait import wait_until

PODCLIENT = str(Path(__file__).resolve().parent / "podclient.py")


def require_root() -> None:
    missing = [t for t in ("ip", "iptables-restore", "setpriv") if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        pytest.fail(
            "shoal up --netns tests need root and ip, iptables-restore, setpriv "
            f"(CI runs as root; .ci/run installs iproute2 iptables); missing: {missing or 'root'}"
        )


def netns_args(state_dir: Path) -> list[str]:
    subnet = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
    vips = f"10.{random.randrange(150, 199)}.0.0/16"
    return [
        "--netns", "--state-dir", str(state_dir), "--pod-subnet", subnet, "--service-cidr", vips,
    ]  # fmt: skip


def in_pod(netns: str, *argv: str, timeout: float = 60) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
    )
    if out.returncode != 0:
        raise AssertionError(f"in {netns}: {argv} exited {out.returncode}: {out.stderr[-500:]}")
    return out.stdout


def http_from(
    netns: str, url: str, count: int = 1, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    hdrs = [f"{k}:{v}" for k, v in (headers or {}).items()]
    text = in_pod(netns, sys.executable, PODCLIENT, "http", url, str(count), *hdrs)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def tcp_from(netns: str, host: str, port: int, count: int = 1, timeout: float = 10.0) -> list[str]:
    text = in_pod(
        netns, sys.executable, PODCLIENT, "tcp", host, str(port), str(count), str(timeout)
    )
    return [json.loads(line)["line"] for line in text.splitlines() if line.strip()]


def pods_ready(up: ShoalUp, replicas: int, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Wait until `replicas` replicas run, registered, in pods, every proxy synced."""

    def probe() -> dict[str, dict[str, Any]] | None:
        if not up.running():
            raise RuntimeError(f"shoal up exited\n{up.log_tail()}")
        try:
            workloads = up.workloads()
            syncz = up.syncz()
        except OSError:
            return None
        ok = len(workloads) == replicas and all(
            r["state"] == "running" and r["registered"] and r["netns"] for r in workloads
        )
        synced = len(syncz) >= replicas and all(
            t.get("sent") and t.get("sent") == t.get("acked")
            for p in syncz
            for t in p["types"].values()
        )
        return {r["replica"]: r for r in workloads} if ok and synced else None

    return wait_until(
        probe, timeout, interval=0.2, what=f"{replicas} pods running and synced",
        describe=up.describe,
    )  # fmt: skip


def left_behind(pid: int, state_dir: Path) -> list[str]:
    """Everything of the run `pid` still on the machine."""
    tag = str(pid % 100000)
    out = []
    netns = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    out += [f"netns {line.split()[0]}" for line in netns.splitlines() if f"shoal-{tag}-" in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name == f"shb{tag}"[:15] or name.startswith(f"shv{tag}-"):
            out.append(f"link {name}")
    out += [f"state {p}" for p in state_dir.glob(f"podnet-{tag}.*")]
    if shutil.which("iptables"):
        forward = subprocess.run(
            ["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=False
        ).stdout
        out += [f"rule {r}" for r in forward.splitlines() if f"shoal-podnet shb{tag}" in r]
    out += [f"etc {p}" for p in Path("/etc/netns").glob(f"shoal-{tag}-*")]
    first = 40_000 + (pid % 4000) * 256  # runtime/pods.py's base ids for this pid
    shm = {f"envoy_shared_memory_{(first + k) * 10}" for k in range(256)}
    out += [f"shm {p}" for p in Path("/dev/shm").glob("envoy_shared_memory_*") if p.name in shm]
    return out


def pod_rules(netns: str) -> str:
    return in_pod(netns, "iptables-save", "-t", "nat")
