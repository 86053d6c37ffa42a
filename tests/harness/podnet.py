"""Pod networks for the kubelet harness: one Linux network namespace per pod, on a bridge.

Injected pods use fixed ports (the sidecar's 15001/15006/15000/15021, the app's own), as in
a cluster, so each pod needs its own network stack: a namespace with loopback and a veth on a
bridge, its own IP in a /24, the host at .1 (where the control planes listen). The host
reaches every pod IP, pods reach each other and the host. Needs root (`ip netns`).

Names carry this process's pid so concurrent test runs never collide; `PodNetwork.close`
removes every namespace, link and the bridge it made.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class PodNetwork:
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}{random.randrange(100)}")
    subnet: str = field(
        default_factory=lambda: f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
    )
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    bridge: str = ""
    _next: int = 2

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.1"

    def open(self) -> PodNetwork:
        self.bridge = f"shbr{self.tag}"[:15]
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_pod(self) -> tuple[str, str]:
        """A new namespace with its own IP: (namespace name, IP)."""
        n = self._next
        self._next += 1
        ns, host_end, pod_end = f"shpod{self.tag}-{n}", f"shv{self.tag}{n}"[:15], "eth0"
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", f"{host_end}p")
        self.links.append(host_end)
        _ip("link", "set", f"{host_end}p", "netns", ns)
        _ip("link", "set", host_end, "master", self.bridge)
        _ip("link", "set", host_end, "up")
        ip = f"{self.subnet}.{n}"
        _ip("-n", ns, "link", "set", f"{host_end}p", "name", pod_end)
        _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", pod_end)
        _ip("-n", ns, "link", "set", pod_end, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "add", "default", "via", self.host_ip)
        return ns, ip

    def close(self) -> None:
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)
        for link in self.links:
            subprocess.run(
                ["ip", "link", "del", link], capture_output=True, timeout=10, check=False
            )
        if self.bridge:
            subprocess.run(
                ["ip", "link", "del", self.bridge], capture_output=True, timeout=10, check=False
            )
        self.namespaces, self.links, self.bridge = [], [], ""
