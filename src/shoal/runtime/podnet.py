"""Pods for `shoal up --netns` (groundwork): network namespaces on a bridge, and their cleanup.

One bridge per run holds `<subnet>.1/24` (the host side, where the control plane is reached);
each pod is a namespace with `lo` up, an `eth0` (a veth whose host end is on the bridge) at
`<subnet>.N/24` and a default route via the bridge, which capture needs (a connect to an
unrouted service address fails before nat OUTPUT can redirect it).

Everything a run makes is named with its tag and recorded in a state file (written atomically
before each object is made), so a run killed with SIGKILL -- no exit hook runs -- is cleaned
by the next `PodNetwork.open()` or `sweep()`: processes in its namespaces are ended (TERM,
then KILL), the host veth ends deleted (a pair goes at once; a deleted namespace frees its
own end only when the kernel gets to it), the namespaces, `/etc/netns/<ns>`, the bridge.
Where br_netfilter sends bridged traffic through the host's iptables, a FORWARD accept rule
for the bridge (tagged by comment) goes and comes with it.
A state file is stale when its pid is gone or now belongs to another process (the start
time recorded beside it differs). Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


class PodNetError(RuntimeError):
    """`ip` refused; the message carries the command and its words."""


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=False)
    if proc.returncode != 0:
        raise PodNetError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _quiet_ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, timeout=15, check=False)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class Pod:
    name: str
    netns: str
    ip: str
    host_link: str


@dataclass
class _State:
    pid: int
    start: str | None
    bridge: str = ""
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # host ends of the pods' veth pairs
    # files in /dev/shm the run's Envoys share (one per --base-id), removed with the rest
    shm: list[str] = field(default_factory=list)
    # the bridge whose host FORWARD accept rule this run added (br_netfilter; see open())
    forward: str = ""

    def dump(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "start": self.start,
                "bridge": self.bridge,
                "namespaces": self.namespaces,
                "links": self.links,
                "shm": self.shm,
                "forward": self.forward,
            }
        )


def _netns_pids(netns: str) -> list[int]:
    proc = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=15, check=False
    )
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _end_processes(netns: str, grace: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _netns_pids(netns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _start_time(p) is not None]
            time.sleep(0.05)
        if not pids:
            return


SHM = Path("/dev/shm")
BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def _forward_rule(op: str, bridge: str) -> bool:
    """Insert (-I) or delete (-D) the host rule letting pod-to-pod traffic of `bridge` through
    FORWARD; False if iptables refused (or is missing)."""
    argv = ["iptables", op, "FORWARD", "-i", bridge, "-o", bridge]
    argv += ["-m", "comment", "--comment", f"shoal-podnet {bridge}", "-j", "ACCEPT"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=15, check=False).returncode == 0
    except OSError:
        return False


def _remove(
    bridge: str,
    namespaces: list[str],
    links: list[str],
    shm: Sequence[str] = (),
    forward: str = "",
) -> None:
    for ns in namespaces:
        _end_processes(ns)
    if forward:
        for _ in range(5):  # one per insert; stop at the first refusal (none left)
            if not _forward_rule("-D", forward):
                break
    for name in shm:
        # only Envoy's own files (a state file is not trusted to name any path)
        if name.startswith("envoy_shared_memory_") and "/" not in name:
            (SHM / name).unlink(missing_ok=True)
    # the host end takes its pair along at once; a deleted namespace frees its own later
    for link in links:
        _quiet_ip("link", "del", link)
    for ns in namespaces:
        _quiet_ip("netns", "del", ns)
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    if bridge:
        _quiet_ip("link", "del", bridge)


def sweep(state_dir: Path) -> list[str]:
    """Remove what dead runs left (their state files say what); the names removed."""
    removed: list[str] = []
    if not state_dir.is_dir():
        return removed
    for path in sorted(state_dir.glob("podnet-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        pid = int(data.get("pid", 0))
        if pid == os.getpid() or (
            _start_time(pid) is not None and _start_time(pid) == data.get("start")
        ):
            continue  # a live run's
        namespaces = [str(n) for n in data.get("namespaces", [])]
        links = [str(n) for n in data.get("links", [])]
        bridge = str(data.get("bridge", ""))
        shm = [str(n) for n in data.get("shm", [])]
        _remove(bridge, namespaces, links, shm, str(data.get("forward", "")))
        removed += [*namespaces, *links, *([bridge] if bridge else [])]
        path.unlink(missing_ok=True)
    return removed


class PodNetwork:
    def __init__(self, state_dir: Path, *, subnet: str = "10.88.0", tag: str | None = None):
        self.state_dir = state_dir
        self.subnet = subnet
        self.tag = tag or f"{os.getpid() % 100000}"
        self.state = _State(os.getpid(), _start_time(os.getpid()))
        self.state_file = state_dir / f"podnet-{self.tag}.json"
        self.pods: list[Pod] = []
        self.swept: list[str] = []
        self._next = 2  # addresses are never reused within a run, so a removed pod's stay dead

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.1"

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(self.state.dump())
        tmp.replace(self.state_file)

    def open(self) -> PodNetwork:
        """Clean what dead runs left, then make this run's bridge."""
        self.swept = sweep(self.state_dir)
        self.state.bridge = f"shb{self.tag}"[:15]
        self._save()  # recorded before it exists: a kill in between still gets it cleaned
        _ip("link", "add", self.state.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self.state.bridge)
        _ip("link", "set", self.state.bridge, "up")
        # With br_netfilter (Docker loads it) bridged pod-to-pod packets cross the host's
        # FORWARD chain, where a DROP policy or rule would lose them while ARP still works.
        with contextlib.suppress(OSError):
            if BR_NETFILTER.read_text().strip() == "1" and shutil.which("iptables"):
                self.state.forward = self.state.bridge
                self._save()
                if not _forward_rule("-I", self.state.bridge):
                    self.state.forward = ""
                    self._save()
        return self

    def add_pod(self, name: str, hosts: dict[str, str] | None = None) -> Pod:
        """A namespace on the bridge with the next address; `hosts` -> /etc/netns/NS/hosts
        (seen by processes started with `ip netns exec`, not by ones entering by setns)."""
        n = self._next
        if n > 254:
            raise PodNetError(f"{self.subnet}.0/24 is full")
        self._next += 1
        netns = f"shoal-{self.tag}-{name}"
        host_link = f"shv{self.tag}-{n}"[:15]
        ip = f"{self.subnet}.{n}"
        self.state.namespaces.append(netns)
        self.state.links.append(host_link)
        self._save()
        _ip("netns", "add", netns)
        _ip("link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", host_link, "master", self.state.bridge)
        _ip("link", "set", host_link, "up")
        _ip("-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")  # down in a new namespace
        _ip("-n", netns, "route", "add", "default", "via", self.host_ip)
        pod = Pod(name, netns, ip, host_link)
        if hosts is not None:
            self.set_hosts(pod, hosts)
        self.pods.append(pod)
        return pod

    def set_hosts(self, pod: Pod, hosts: dict[str, str]) -> None:
        """/etc/netns/NS/hosts: `hosts` maps "name1 name2" to an address. Rewritten in place
        (one write): `ip netns exec` bind-mounts that inode, so a renamed new file would go
        unseen by processes already running."""
        etc = NETNS_ETC / pod.netns
        etc.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", f"{pod.ip} {pod.name}"]
        lines += [f"{addr} {names}" for names, addr in hosts.items()]
        text = "\n".join(lines) + "\n"
        path = etc / "hosts"
        if not path.exists() or path.read_text() != text:
            with path.open("w") as out:
                out.write(text)

    def remove_pod(self, pod: Pod) -> None:
        """End the pod's processes and delete its namespace, veth and hosts file."""
        _remove("", [pod.netns], [pod.host_link])
        if pod.netns in self.state.namespaces:
            self.state.namespaces.remove(pod.netns)
        if pod.host_link in self.state.links:
            self.state.links.remove(pod.host_link)
        self._save()
        self.pods = [p for p in self.pods if p.netns != pod.netns]

    def track_shm(self, name: str) -> None:
        """Record a /dev/shm file (an Envoy base id's) for cleanup, before it exists."""
        if name not in self.state.shm:
            self.state.shm.append(name)
            self._save()

    def close(self) -> None:
        """End the pods' processes, delete the namespaces, the bridge and the state file."""
        _remove(
            self.state.bridge,
            list(self.state.namespaces),
            list(self.state.links),
            list(self.state.shm),
            self.state.forward,
        )
        self.state.forward = ""
        self.state.namespaces.clear()
        self.state.links.clear()
        self.state.shm.clear()
        self.state.bridge = ""
        self.pods.clear()
        self.state_file.unlink(missing_ok=True)
