"""``shoal up`` (directly, or through ``make demo``) as a subprocess, and the process table.

``ShoalUp`` starts the command in its own process group with fresh ports and keeps its output in
a file. ``shoal up`` starts every app and sidecar in a session of its own, so signalling the
process group does not reach them: the helper therefore remembers every descendant it has seen
(pid and start time, so a reused pid is never mistaken for ours) and ``stop`` kills whatever of
them is still there after the graceful shutdown. Only processes started under this run's root
process are ever signalled.

``leftovers`` is the test's view of "nothing is left running": every live process that is one
of the remembered descendants, mentions one of this run's ports on its command line, or is an
Envoy started from one of this run's ``shoal-agent-`` bootstrap files.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import procs
from harness.adminhttp import get_json, request
from harness.controlplane import is_synced
from harness.ports import free_port
from harness.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


# -- the process table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """One entry of the process table (from /proc)."""

    pid: int
    ppid: int
    start: int  # clock ticks since boot: with the pid, identifies the process
    state: str
    argv: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    @property
    def cmdline(self) -> str:
        return " ".join(self.argv)

    def __str__(self) -> str:
        return f"pid {self.pid} (ppid {self.ppid}, state {self.state}): {self.cmdline[:300]}"


def read_proc(pid: int) -> Proc | None:
    """The process ``pid``, or None if it is gone (or unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    return Proc(pid=pid, ppid=int(fields[1]), start=int(fields[19]), state=fields[0], argv=argv)


def process_table() -> list[Proc]:
    """Every process this user can see, right now."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = read_proc(int(entry))
            if proc is not None:
                out.append(proc)
    return out


def descendants(root: int, table: Iterable[Proc]) -> list[Proc]:
    """The processes below ``root`` in the parent tree (not ``root`` itself)."""
    children: dict[int, list[Proc]] = {}
    for proc in table:
        children.setdefault(proc.ppid, []).append(proc)
    out: list[Proc] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child.pid)
    return out


def is_alive(key: tuple[int, int]) -> bool:
    """True while the process (pid, start time) exists, zombies included."""
    proc = read_proc(key[0])
    return proc is not None and proc.start == key[1]


def vm_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (``VmRSS`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"pid {pid} has no VmRSS (a zombie or kernel thread?)")


def _mentions_port(argv: Sequence[str], ports: set[int]) -> bool:
    """True if a word of ``argv`` is one of ``ports`` (also as ``host:PORT`` or ``--flag=PORT``)."""
    for word in " ".join(argv).split():
        for part in (word, word.rsplit(":", 1)[-1], word.rsplit("=", 1)[-1]):
            if part.isdigit() and int(part) in ports:
                return True
    return False


def _envoy_bootstrap(argv: Sequence[str]) -> str | None:
    """The ``-c`` file of an Envoy started by ``shoal agent`` (in a ``shoal-agent-`` dir)."""
    # before the exec, .venv/bin/envoy (a Python script that execs the binary) runs as
    # "python .../envoy -c ..."
    if not any(Path(arg).name == "envoy" for arg in argv[:2]):
        return None
    for flag, value in itertools.pairwise(argv):
        if flag in ("-c", "--config-path") and "shoal-agent-" in value:
            return value
    return None


# -- shoal up ---------------------------------------------------------------------------------


class ShoalUp:
    """One ``shoal up`` run: a context manager that always leaves nothing running.

    ``via_make=True`` runs ``make -s demo DEMO_ARGS=...`` from the repository root (the demo
    folder is then the Makefile's ``examples/demo``); otherwise ``.venv/bin/shoal up DIR``.
    """

    def __init__(
        self,
        config_dir: Path | None,
        workdir: Path,
        *,
        via_make: bool = False,
        name: str = "shoal-up",
        extra_args: Sequence[str] = (),
    ) -> None:
        assert via_make or config_dir is not None, "shoal up needs a folder"
        self.config_dir = config_dir
        self.via_make = via_make
        self.name = name
        self.extra_args = list(extra_args)  # e.g. --secure
        self.xds_port = free_port()
        self.admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: dict[tuple[int, int], Proc] = {}  # every descendant ever seen
        self.bootstraps: set[str] = set()  # Envoy bootstrap files of this run's agents
        self.ports: set[int] = {self.xds_port, self.admin_port}  # every port of this run

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def argv(self) -> list[str]:
        flags = [
            "--xds-port",
            str(self.xds_port),
            "--admin-port",
            str(self.admin_port),
            "--no-status",
            *self.extra_args,
        ]
        if self.via_make:
            return ["make", "-s", "demo", f"DEMO_ARGS={' '.join(flags)}"]
        return [str(VENV_BIN / "shoal"), "up", str(self.config_dir), *flags]

    def start(self) -> ShoalUp:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as a terminal would give it
            )
        procs.register(self.proc)
        return self

    def __enter__(self) -> ShoalUp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _alive(self) -> bool:
        if not self.running():
            assert self.proc is not None
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")
        return True

    def track(self) -> list[Proc]:
        """Remember every process now below the root (and Envoy bootstrap paths); return them."""
        if self.proc is None:
            return []
        below = descendants(self.pid, process_table())
        for proc in below:
            self.seen[proc.key] = proc  # the latest argv: the envoy script execs the binary
            bootstrap = _envoy_bootstrap(proc.argv)
            if bootstrap is not None:
                self.bootstraps.add(bootstrap)
        return below

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """Send ``sig`` to the root's process group, like Ctrl-C in its terminal."""
        self.track()
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 20.0) -> list[Proc]:
        """SIGINT the group; after ``timeout`` SIGKILL the group and every descendant seen.

        Returns the remembered processes that outlived the graceful stop (they are killed).
        """
        if self.proc is None:
            return []
        if self.running():
            self.interrupt()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
        procs.kill(self.proc)
        survivors = [p for p in self.seen.values() if is_alive(p.key)]
        for proc in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        return survivors

    # -- admin API ---------------------------------------------------------------------------

    def workloads(self) -> list[dict[str, Any]]:
        """``/debug/workloads``; also remembers every pid and port it names."""
        data: list[dict[str, Any]] = get_json(self.admin_url + "/debug/workloads", timeout=2)
        self.track()
        for replica in data:
            self.ports.update(int(p) for p in replica["ports"].values())
        return data

    def replica(self, name: str) -> dict[str, Any]:
        found = [r for r in self.workloads() if r["replica"] == name]
        assert found, f"no replica {name} in /debug/workloads"
        return found[0]

    def syncz(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = get_json(self.admin_url + "/debug/syncz", timeout=2)
        return data

    def wait_ready(
        self, replicas: int, timeout: float = 40.0, *, proxies: int | None = None
    ) -> list[dict[str, Any]]:
        """Wait until ``replicas`` replicas run (app up, registered) and every proxy is synced
        (``proxies`` of them: more than ``replicas`` when gateways run).

        Returns ``/debug/workloads`` as it was then.
        """
        last: dict[str, Any] = {}

        def probe() -> list[dict[str, Any]] | None:
            self._alive()
            if request("GET", self.admin_url + "/ready", timeout=1)[0] != 200:
                return None
            workloads = last["workloads"] = self.workloads()
            if len(workloads) != replicas or not all(
                r["state"] == "running" and r["registered"] and r["app_pid"] and r["sidecar_pid"]
                for r in workloads
            ):
                return None
            syncz = last["syncz"] = self.syncz()
            if not is_synced(syncz, replicas if proxies is None else proxies):
                return None
            # "registered" and "synced" may both hold while the push of the last registration
            # still waits in the debounce window: ask every Envoy for its endpoints
            missing = last["endpoints"] = self.missing_endpoints(workloads)
            return None if missing else workloads

        result = wait_until(
            probe,
            timeout,
            interval=0.1,
            what=f"{self.name}: {replicas} replicas running and their proxies synced",
            describe=lambda: f"last seen: {last}\n{self.describe()}",
        )
        self.track()
        return result

    def missing_endpoints(self, workloads: list[dict[str, Any]]) -> list[str]:
        """Per sidecar, the local services whose endpoints its Envoy does not all have yet."""
        expected: dict[str, set[str]] = {}
        for r in workloads:
            if r["registered"]:
                expected.setdefault(r["service"], set()).add(f"127.0.0.1:{r['ports']['inbound']}")
        out = []
        for r in workloads:
            clusters = envoy_cluster_hosts(r["ports"]["admin"])
            for name, hosts in clusters.items():
                direction, _port, subset, host = [*name.split("|"), "", "", ""][:4]
                if direction != "outbound" or subset or host not in expected:
                    continue
                if set(hosts) != expected[host]:
                    out.append(f"{r['replica']}: {name} has {sorted(hosts)}")
            for service in expected:
                if not any(n.endswith(f"||{service}") for n in clusters):
                    out.append(f"{r['replica']}: no cluster for {service}")
        return out

    # -- "nothing is left" -------------------------------------------------------------------

    def leftovers(self) -> list[str]:
        """Live processes of this run, each with the reason it counts as one."""
        out = []
        for proc in process_table():
            if proc.pid == os.getpid():
                continue
            reasons = []
            if proc.key in self.seen:
                reasons.append("started under this run")
            if _mentions_port(proc.argv, self.ports):
                reasons.append("mentions a port of this run")
            bootstrap = _envoy_bootstrap(proc.argv)
            if bootstrap is not None and bootstrap in self.bootstraps:
                reasons.append("Envoy from this run's bootstrap")
            if reasons:
                out.append(f"{proc} [{', '.join(reasons)}]")
        return out

    # -- diagnostics -------------------------------------------------------------------------

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def describe(self) -> str:
        return f"--- {self.name} output ({self.log_path}) ---\n{self.log_tail()}"


# -- HTTP through a sidecar -------------------------------------------------------------------


def get_via_proxy(
    proxy_port: int, url: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """GET ``url`` through the HTTP proxy 127.0.0.1:``proxy_port`` (a sidecar's outbound port),
    as an app with ``HTTP_PROXY`` does: absolute-form request line, ``Host`` from the URL.

    Returns (status, decoded JSON body, or the text if it is not JSON).
    """
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy_port}"})
    )
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def envoy_cluster_hosts(admin_port: int) -> dict[str, dict[str, dict[str, int]]]:
    """An Envoy's clusters (admin ``/clusters?format=json``): per cluster, per ``ip:port``
    host, its counters (``rq_total``, ``rq_success``, ``rq_error``, ...)."""
    data = get_json(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=2)
    out: dict[str, dict[str, dict[str, int]]] = {}
    for status in data.get("cluster_statuses", []):
        hosts: dict[str, dict[str, int]] = {}
        for host in status.get("host_statuses", []):
            sock = host["address"].get("socket_address", {})
            stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
            hosts[f"{sock.get('address')}:{sock.get('port_value')}"] = stats
        out[status["name"]] = hosts
    return out
