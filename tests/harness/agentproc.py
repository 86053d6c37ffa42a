"""A real `shoal agent` (python -m shoal.agent) as a subprocess, and what the OS says about it.

``Agent`` starts the agent with free ports, waits until its Envoy is ready, and reads
``/debug/envoy`` (epoch, pid, base id, draining epochs, every pid it started). At teardown
``stop()`` ends the agent and then checks the process table: no process started by it (by
pid, and none whose command line names its private directory) may be left, nor its Envoy
shared-memory file.

``connection_owner`` finds which process holds the server side of a TCP connection (by
/proc/net/tcp inode and /proc/PID/fd), so a test can prove which Envoy epoch a connection
landed on. ``Stream`` is a slow chunked GET (harness/backend.py's /stream) read to its end in a
thread: a request in flight across a restart or a drain.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import procs
from harness.adminhttp import get_json, request
from harness.ports import free_port
from harness.wait import wait_until


class Agent:
    def __init__(
        self,
        workdir: Path,
        xds_port: int,
        *,
        name: str = "hot-0",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.xds_port = xds_port
        self.outbound, self.inbound, self.admin, self.health = (free_port() for _ in range(4))
        self.extra_args = list(extra_args)
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen_pids: set[int] = set()
        self.private_dir: str | None = None
        self.base_id: int | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health}"

    def start(self) -> Agent:
        argv = [
            sys.executable, "-m", "shoal.agent", "--log-level", "INFO",
            "--name", self.name,
            "--labels", f"app={self.name}",
            "--xds-address", f"127.0.0.1:{self.xds_port}",
            "--outbound-port", str(self.outbound),
            "--inbound-port", str(self.inbound),
            "--admin-port", str(self.admin),
            "--health-port", str(self.health),
            "--prometheus-port", "0",
            *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            # its own group, as shoal up starts it: a test may signal the group
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        procs.register(self.proc)
        wait_until(
            lambda: self.alive() and self.debug()["epoch"] == 0 and self.envoy_ready(),
            40,
            interval=0.1,
            what=f"agent {self.name}'s Envoy ready",
            describe=self.log_tail,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def envoy_ready(self) -> bool:
        return request("GET", f"http://127.0.0.1:{self.admin}/ready", timeout=2)[0] == 200

    def debug(self) -> dict[str, Any]:
        out: dict[str, Any] = get_json(f"{self.health_url}/debug/envoy", timeout=5)
        self.seen_pids.update(out["pids"])
        self.private_dir = str(Path(out["bootstrap"]).parent)
        self.base_id = out["base_id"]
        return out

    def server_info(self) -> dict[str, Any]:
        info: dict[str, Any] = get_json(f"http://127.0.0.1:{self.admin}/server_info", timeout=5)
        return info

    def reload(self, timeout: float = 120) -> tuple[int, Any]:
        """POST /reload, what `shoal agent reload` sends: (status, JSON answer)."""
        status, body = request("POST", f"{self.health_url}/reload", timeout=timeout, body=b"")
        return status, json.loads(body)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def signal_group(self, sig: signal.Signals) -> None:
        """`sig` to the agent's whole process group, as shoal up's Child.stop sends it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def stop(self) -> int | None:
        """Stop the agent (SIGTERM), then check no process or file of it is left."""
        if self.proc is None:
            return None
        if self.alive():
            self.debug()
        rc = procs.terminate(self.proc, timeout=20)
        left = leftover_processes(self.seen_pids, self.private_dir)
        for pid in left:  # only ever ours: started by this agent, found by pid or its dir
            os.kill(pid, signal.SIGKILL)
        assert not left, f"agent {self.name} left processes behind: {left}\n{self.log_tail()}"
        if self.base_id is not None:
            shm = Path("/dev/shm") / f"envoy_shared_memory_{self.base_id * 10}"
            assert not shm.exists(), f"{shm} left behind"
        return rc


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return None if state == "Z" else raw.replace(b"\0", b" ").decode(errors="replace")


def leftover_processes(pids: set[int], private_dir: str | None) -> list[int]:
    """Live processes among `pids`, or any whose command line names `private_dir`."""
    found = [pid for pid in pids if _cmdline(pid) is not None]
    if private_dir:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in found:
                cmd = _cmdline(int(entry.name))
                if cmd is not None and private_dir in cmd:
                    found.append(int(entry.name))
    return sorted(found)


def _socket_inode(local_port: int, peer_port: int) -> str | None:
    """The inode of the 127.0.0.1:local_port <- 127.0.0.1:peer_port socket in /proc/net/tcp."""
    want_local = f"0100007F:{local_port:04X}"
    want_peer = f"0100007F:{peer_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want_local and fields[2] == want_peer:
            return fields[9]
    return None


def connection_owner(local_port: int, peer_port: int, candidates: Sequence[int]) -> int | None:
    """Which of `candidates` holds the server side of the connection from `peer_port`."""
    inode = _socket_inode(local_port, peer_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    if os.readlink(fd) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


@dataclass
class Stream:
    """A slow chunked GET through the sidecar, read to its end in a thread."""

    port: int
    host: str
    chunks: int = 6
    every: float = 0.25
    status: int | None = None
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    local_port: int | None = None
    first_chunk: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(
                "GET",
                f"/stream?chunks={self.chunks}&every={self.every}",
                headers={"Host": self.host},
            )
            self.local_port = conn.sock.getsockname()[1]
            resp = conn.getresponse()
            self.status = resp.status
            while line := resp.readline():
                self.lines.append(line.decode().strip())
                self.first_chunk.set()
        except (OSError, http.client.HTTPException) as exc:
            self.error = repr(exc)
        finally:
            self.first_chunk.set()
            conn.close()

    def start(self) -> Stream:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.first_chunk.wait(15), "the stream never started"
        return self

    def join(self) -> None:
        self.thread.join(30)
        assert self.error is None, f"stream cut: {self.error} after {self.lines}"
        assert self.status == 200 and self.lines == [f"chunk {i}" for i in range(self.chunks)], (
            self.status,
            self.lines,
        )


AgentFactory = Callable[..., Agent]
