"""`shoal up --netns`: each replica a "pod" -- its own network namespace, address and capture.

`Pods` owns the run's `PodNetwork` (podnet.py: bridge, namespaces, the state file a killed run
leaves for the next to sweep). Each replica gets a `PodSlot`: its namespace on the bridge, the
Istio-style capture rules of its LocalWorkload's `traffic.sidecar.istio.io/*` annotations
(agent/capture.py), a hosts file naming every service by its VIP (so `http://reviews:9080/`
resolves inside the pod and nothing on the host changes), and the argv prefixes that start
its sidecar (`ip netns exec` + `setpriv` to UID/GID 1337, the UID the rules exempt) and its
app (`ip netns exec`, as shoal up's own user, which the rules capture).

Names resolve from /etc/netns/NS/hosts, which `ip netns exec` bind-mounts over /etc/hosts for
the processes it starts: glibc's resolver and Envoy's both read it, no DNS server runs, and
the host's resolver is never touched. Only processes started through `ip netns exec` see it;
that is every process of a pod here.

Readiness probes of the app connect from a socket made inside the pod (setns in a worker
thread) to 127.0.0.1: from the host, the pod's capture would hand the connection to Envoy's
15006, which accepts whether or not the app listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shoal.agent.capture import PROXY_UID, CaptureError, from_annotations
from shoal.agent.captureapply import CaptureApplyError, apply_capture
from shoal.model import MeshSnapshot
from shoal.runtime.podnet import Pod, PodNetError, PodNetwork, sweep

log = logging.getLogger("shoal.runtime")

DEFAULT_STATE_DIR = Path("/run/shoal")
DEFAULT_SUBNET = "10.88.0"
DEFAULT_VIPS = "10.96.0.0/16"
NETNS_RUN = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
# every pod's Envoy shares /dev/shm: hot restart needs a base id of its own per sidecar
_BASE_ID_FIRST = 40_000 + (os.getpid() % 4000) * 256


class PodsUnavailable(RuntimeError):
    """What this machine lacks for `--netns` (root, ip, iptables, setpriv)."""


def check_host() -> None:
    """Raise `PodsUnavailable` naming what is missing."""
    missing = [tool for tool in ("ip", "iptables-restore", "setpriv") if not shutil.which(tool)]
    if os.geteuid() != 0:
        raise PodsUnavailable(
            "shoal up --netns needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN: namespaces, veth, "
            "iptables)"
        )
    if missing:
        raise PodsUnavailable(
            f"shoal up --netns needs {', '.join(missing)}: apt-get install iproute2 iptables "
            "util-linux"
        )


def cleanup(state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """`shoal up --cleanup`: remove what runs that are gone left (live runs are kept)."""
    return sweep(state_dir)


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def socket_in(netns: str) -> socket.socket:
    """A TCP socket of the namespace `netns` (a socket stays in the namespace it was made
    in). Switches only the calling thread, and back; call it in a worker thread."""
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(NETNS_RUN / netns, "rb") as there,
    ):
        _setns(there.fileno())
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            _setns(home.fileno())


def _names(hostname: str, service_ns: str, pod_ns: str) -> list[str]:
    """How a pod of `pod_ns` may name the service, as Kubernetes' search path allows."""
    suffix = f".{service_ns}.svc.cluster.local"
    if not hostname.endswith(suffix):
        return [hostname]
    short = hostname[: -len(suffix)]
    names = [f"{short}.{service_ns}", f"{short}.{service_ns}.svc", hostname]
    return [short, *names] if service_ns == pod_ns else names


def hosts_for(snapshot: MeshSnapshot, namespace: str) -> dict[str, str]:
    """ "name1 name2 ..." -> VIP for every service with a single IPv4 address."""
    out: dict[str, str] = {}
    for service in snapshot.services.values():
        addresses = [a for a in service.addresses if "/" not in a and ":" not in a]
        if addresses:
            names = _names(service.hostname, service.namespace, namespace)
            out[" ".join(names)] = addresses[0]
    return out


@dataclass
class PodSlot:
    """One replica's pod: made on first use, kept while the replica's processes restart."""

    pods: Pods
    name: str
    namespace: str
    annotations: Mapping[str, str]
    base_id: int
    pod: Pod | None = None
    capture_rules: str = ""

    @property
    def ip(self) -> str:
        assert self.pod is not None
        return self.pod.ip

    @property
    def netns(self) -> str:
        assert self.pod is not None
        return self.pod.netns

    def ensure(self) -> None:
        """Make the namespace and load its capture rules (once). Raises CaptureError for
        bad annotations, CaptureApplyError or PodNetError when the system refuses."""
        if self.pod is not None:
            return
        cfg = from_annotations(self.annotations)  # bad annotations: before anything is made
        with self.pods.lock:  # the state file and address counter are the run's
            if self.pods.closed:
                raise PodNetError("shoal up is stopping: no new pods")
            pod = self.pods.net.add_pod(self.name, hosts=self.pods.hosts(self.namespace))
            self.pod = pod
            shm = f"envoy_shared_memory_{self.base_id * 10}"
            self.pods.net.track_shm(shm)
        self.capture_rules = apply_capture(cfg, pod.netns)
        with contextlib.suppress(OSError):
            os.unlink(f"/dev/shm/{shm}")  # a killed Envoy's: epoch 0 must start afresh

    def agent_prefix(self) -> list[str]:
        return [
            "ip", "netns", "exec", self.netns,
            "setpriv", f"--reuid={PROXY_UID}", f"--regid={PROXY_UID}", "--clear-groups",
        ]  # fmt: skip

    def app_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    async def listening(self, port: int) -> bool:
        """Whether something accepts on 127.0.0.1:port inside the pod."""
        loop = asyncio.get_running_loop()
        sock = await asyncio.to_thread(socket_in, self.netns)
        try:
            sock.setblocking(False)
            async with asyncio.timeout(1):
                await loop.sock_connect(sock, ("127.0.0.1", port))
            return True
        except (OSError, TimeoutError):
            return False
        finally:
            sock.close()

    def close(self) -> None:
        if self.pod is not None:
            with self.pods.lock:
                self.pods.net.remove_pod(self.pod)
            self.pod = None


@dataclass
class Pods:
    """The pods of one `shoal up --netns` run."""

    net: PodNetwork
    snapshot: MeshSnapshot | None = None
    slots: list[PodSlot] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    _base_ids: int = 0

    @classmethod
    def open(cls, state_dir: Path, subnet: str) -> Pods:
        check_host()
        net = PodNetwork(state_dir, subnet=subnet).open()
        if net.swept:
            log.warning("removed what an earlier run left: %s", ", ".join(net.swept))
        return cls(net)

    @property
    def host_ip(self) -> str:
        return self.net.host_ip

    def slot(self, name: str, namespace: str, annotations: Mapping[str, str]) -> PodSlot:
        base_id = _BASE_ID_FIRST + self._base_ids % 256
        self._base_ids += 1
        out = PodSlot(self, name, namespace, dict(annotations), base_id)
        self.slots.append(out)
        return out

    def hosts(self, namespace: str) -> dict[str, str]:
        return hosts_for(self.snapshot, namespace) if self.snapshot is not None else {}

    def on_snapshot(self, snapshot: MeshSnapshot) -> None:
        """Every pod's hosts file follows the services and their VIPs."""
        self.snapshot = snapshot
        for slot in list(self.slots):
            if slot.pod is not None:
                self.net.set_hosts(slot.pod, self.hosts(slot.namespace))

    def forget(self, slot: PodSlot) -> None:
        slot.close()
        if slot in self.slots:
            self.slots.remove(slot)

    def close(self) -> None:
        with self.lock:  # a pod being made meanwhile is finished first, then removed too
            self.closed = True
            self.slots.clear()
            self.net.close()


__all__ = [
    "DEFAULT_STATE_DIR",
    "DEFAULT_SUBNET",
    "DEFAULT_VIPS",
    "CaptureApplyError",
    "CaptureError",
    "PodSlot",
    "Pods",
    "PodsUnavailable",
    "check_host",
    "cleanup",
    "hosts_for",
    "socket_in",
]
