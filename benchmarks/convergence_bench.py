"""Convergence: from a config file write to every real Envoy having ACKed the change.

Starts ``shoal control-plane`` (a subprocess on free ports, serving a temporary directory with
a modest mesh from meshgen.py) and real Envoys (``--concurrency 1``, ADS over GRPC, the
NONE-mode sidecar bootstrap of tests/harness), first 1 and then 20. With every Envoy synced it
repeatedly

* rewrites one VirtualService (new 90/10-style weights, atomic write + rename) and times the
  write until every Envoy has ACKed a new RDS version, polling ``/debug/syncz`` every ~5 ms;
* rewrites one ServiceEntry with a new endpoint port and times the write until every Envoy
  has ACKed a new EDS version (and checks that CDS, LDS and RDS were not pushed at all).

After each change every Envoy is cross-checked on its own admin API: the RDS
``version_text`` (``/stats?filter=rds``) or the EDS version in ``/config_dump`` must equal the
version shoal reports ACKed, and the route weights / endpoint port must be the new ones.

Each scenario runs with shoal's default debounce (100 ms) and with ``--debounce-ms 10`` so
the cost of the debounce window is visible; the control plane's own "built in" time (parse,
validate, snapshot) is read from its log. Every process started here is stopped in
``finally``. Run with ``make bench`` or ``.venv/bin/python benchmarks/convergence_bench.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the e2e harness is the package `harness` under tests/ (meshgen sits next to this script)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.adminhttp import get_json, request
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane, wait_synced
from harness.envoy import ApiType, EnvoyProcess, sidecar_bootstrap, sidecar_node
from harness.ports import free_port
from harness.wait import wait_until
from meshgen import (
    ENDPOINT_PORT,
    SERVICE_PORT,
    ServiceSpec,
    generate_mesh,
    mesh_size,
    service_entry,
    services,
    virtual_service,
)

SERVICES = 50
ENDPOINTS = 10
NAMESPACES = 5
VS_FRACTION = 0.5
POLL_S = 0.005
CHANGE_TIMEOUT_S = 15.0
_BUILT = re.compile(r"snapshot (\S+): .* built in ([0-9.]+) ms")


class Syncz:
    """``GET /debug/syncz`` on one kept-alive connection (a new one per poll would cost more
    than the 5 ms poll interval on a busy 2-core machine)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def get(self) -> list[dict[str, Any]]:
        for attempt in range(2):
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self._conn.request("GET", "/debug/syncz")
                resp = self._conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"/debug/syncz -> {resp.status}")
                data: list[dict[str, Any]] = json.loads(body)
                return data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def versions(syncz: list[dict[str, Any]], kind: str, field_: str = "acked") -> dict[str, Any]:
    return {p["node"]: p["types"].get(kind, {}).get(field_) for p in syncz}


@dataclass(frozen=True)
class Timing:
    """One change: ms from the write until every node was sent / had ACKed a new version."""

    sent_ms: float
    acked_ms: float
    syncz: list[dict[str, Any]]


@dataclass
class Samples:
    sent_ms: list[float] = field(default_factory=list)
    acked_ms: list[float] = field(default_factory=list)

    def add(self, timing: Timing) -> None:
        self.sent_ms.append(timing.sent_ms)
        self.acked_ms.append(timing.acked_ms)

    def row(self) -> str:
        """``sent p50 | acked p50 max``."""
        if not self.acked_ms:
            return f"{'-':>5} {'-':>6} {'-':>5}"
        p50 = statistics.median
        return f"{p50(self.sent_ms):5.0f} {p50(self.acked_ms):6.0f} {max(self.acked_ms):5.0f}"


@dataclass
class Scenario:
    """Samples of one (N Envoys, debounce) setting."""

    n: int
    debounce_ms: int
    rds: Samples = field(default_factory=Samples)
    eds: Samples = field(default_factory=Samples)
    build_ms: dict[str, list[float]] = field(default_factory=lambda: {"rds": [], "eds": []})
    cds_pushed_on_eds_change: int = 0
    checks: int = 0


@dataclass
class Bench:
    workdir: Path
    config: ConfigDir
    targets: list[ServiceSpec]
    api_type: ApiType = "GRPC"
    cp: ControlPlane | None = None
    envoys: list[EnvoyProcess] = field(default_factory=list)
    syncz: Syncz | None = None
    _log_offset: int = 0
    _edits: int = 0

    # -- processes --------------------------------------------------------------------------
    def start_control_plane(self, debounce_ms: int) -> None:
        if self.cp is None:
            self.cp = ControlPlane(self.config.path, workdir=self.workdir, debounce_ms=debounce_ms)
            self.cp.start()
        else:
            # Same ports, new settings: the Envoys reconnect as after a control-plane restart.
            self.cp.debounce_ms = debounce_ms
            self.cp.restart()
        self.cp.wait_ready()
        if self.syncz is not None:
            self.syncz.close()
        self.syncz = Syncz(self.cp.admin_port)

    def add_envoys(self, total: int) -> None:
        assert self.cp is not None
        while len(self.envoys) < total:
            name = f"bench-{len(self.envoys)}"
            # no APP_PORT: no app behind these sidecars, so no inbound listener
            node_id, metadata = sidecar_node(
                name, outbound_port=free_port(), inbound_port=free_port()
            )
            bootstrap = sidecar_bootstrap(
                node_id, metadata, self.cp.xds_port, free_port(), api_type=self.api_type
            )
            envoy = EnvoyProcess(bootstrap, self.workdir, name=name, wait="admin")
            self.envoys.append(envoy)  # appended first so `stop_all` reaps it even if start fails
            envoy.start()

    def wait_synced(self) -> None:
        assert self.cp is not None
        wait_synced(self.cp, len(self.envoys), timeout=30)

    def stop_all(self) -> None:
        for envoy in reversed(self.envoys):
            with contextlib.suppress(Exception):
                envoy.stop()
        if self.syncz is not None:
            self.syncz.close()
        if self.cp is not None:
            self.cp.stop()

    # -- measurement ------------------------------------------------------------------------
    def _until_all(self, kind: str, before: dict[str, Any], t0: float) -> Timing:
        """Poll syncz until every node ACKed a ``kind`` version that is not the one it held in
        ``before``; also note when every node had been *sent* a new one."""
        assert self.syncz is not None
        deadline = t0 + CHANGE_TIMEOUT_S
        sent_ms: float | None = None
        while True:
            data = self.syncz.get()
            now = time.perf_counter()

            def new(p: dict[str, Any], what: str) -> bool:
                return p["types"].get(kind, {}).get(what) not in (None, before.get(p["node"]))

            complete = len(data) == len(before)
            if sent_ms is None and complete and all(new(p, "sent") for p in data):
                sent_ms = (now - t0) * 1000
            if complete and all(new(p, "acked") for p in data):
                acked_ms = (now - t0) * 1000
                return Timing(acked_ms if sent_ms is None else sent_ms, acked_ms, data)
            nacks = [p["node"] for p in data if p["types"].get(kind, {}).get("nack")]
            if nacks:
                raise RuntimeError(f"{kind} NACKed by {nacks}: {data}")
            if now > deadline:
                assert self.cp is not None
                raise RuntimeError(f"no {kind} ACK from every node: {data}\n{self.cp.describe()}")
            time.sleep(POLL_S)

    def _built_ms(self) -> float | None:
        """The last "built in" time the control plane logged since the previous call."""
        assert self.cp is not None
        text = self.cp.stderr_text()
        fresh, self._log_offset = text[self._log_offset :], len(text)
        found = _BUILT.findall(fresh)
        return float(found[-1][1]) if found else None

    def _settle(self) -> None:
        """Let the watcher and debouncer go quiet so one change is one measured push."""
        self.wait_synced()
        time.sleep(0.3)
        self._built_ms()

    def vs_change(self, sc: Scenario) -> None:
        assert self.syncz is not None
        self._settle()
        self._edits += 1
        svc = self.targets[0]
        v2 = 10 + self._edits % 80  # new weights every time: a new route table version
        before = versions(self.syncz.get(), "rds")
        t0 = time.perf_counter()
        self.config.write(svc.file("vs"), virtual_service(svc, 100 - v2, v2))
        timing = self._until_all("rds", before, t0)
        sc.rds.add(timing)
        data = timing.syncz
        self._record_build(sc, "rds")
        acked = versions(data, "rds")
        for envoy in self.envoys:
            self._check_rds(envoy, acked, svc, 100 - v2, v2)
            sc.checks += 1

    def eds_change(self, sc: Scenario) -> None:
        assert self.syncz is not None
        self._settle()
        self._edits += 1
        svc = self.targets[1]
        port = ENDPOINT_PORT + self._edits
        data = self.syncz.get()
        before = versions(data, "eds")
        others = {k: versions(data, k, "sent") for k in ("cds", "lds", "rds")}
        t0 = time.perf_counter()
        self.config.write(svc.file("se"), service_entry(svc, ENDPOINTS, port=port))
        timing = self._until_all("eds", before, t0)
        sc.eds.add(timing)
        data = timing.syncz
        self._record_build(sc, "eds")
        # An endpoint-only change must travel as EDS alone (DESIGN.md).
        if any(versions(data, k, "sent") != v for k, v in others.items()):
            sc.cds_pushed_on_eds_change += 1
        acked = versions(data, "eds")
        for envoy in self.envoys:
            self._check_eds(envoy, acked, svc, port)
            sc.checks += 1

    def _record_build(self, sc: Scenario, kind: str) -> None:
        # the log line may trail the push by a moment
        built = wait_until(self._built_ms, 2.0, interval=0.01, what="a 'built in' log line")
        sc.build_ms[kind].append(built)

    # -- cross-checks on the Envoys themselves ----------------------------------------------
    def _node_of(self, envoy: EnvoyProcess) -> str:
        bootstrap = envoy.bootstrap
        assert isinstance(bootstrap, dict)
        node: str = bootstrap["node"]["id"]
        return node

    def _check_rds(
        self, envoy: EnvoyProcess, acked: dict[str, Any], svc: ServiceSpec, w1: int, w2: int
    ) -> None:
        status, body = request("GET", envoy.admin_url + "/stats?filter=rds")
        text = body.decode()
        match = re.search(r"rds\.outbound_http\.version_text: \"([^\"]*)\"", text)
        expected = acked[self._node_of(envoy)]
        if status != 200 or match is None or match.group(1) != expected:
            raise RuntimeError(f"{envoy.name}: RDS version in Envoy != {expected}:\n{text}")
        dump = get_json(envoy.admin_url + "/config_dump?resource=dynamic_route_configs")
        weights = _route_weights(dump, f"{svc.host}:{SERVICE_PORT}")
        if weights != [w1, w2]:
            raise RuntimeError(f"{envoy.name}: route weights {weights}, expected {[w1, w2]}")

    def _check_eds(
        self, envoy: EnvoyProcess, acked: dict[str, Any], svc: ServiceSpec, port: int
    ) -> None:
        url = "/config_dump?resource=dynamic_endpoint_configs&include_eds"
        dump = get_json(envoy.admin_url + url)
        name = f"outbound|{SERVICE_PORT}||{svc.host}"
        entry = next(
            (
                e
                for e in dump.get("configs", [])
                if e.get("endpoint_config", {}).get("cluster_name") == name
            ),
            None,
        )
        expected = acked[self._node_of(envoy)]
        # Envoy leaves version_info out of its EDS dump for ADS-delivered assignments: compare
        # it when present; the port below is the real check that the change arrived.
        if entry is None or entry.get("version_info", expected) != expected:
            raise RuntimeError(f"{envoy.name}: EDS for {name} not at {expected}: {entry}")
        ports = {
            lb["endpoint"]["address"]["socket_address"]["port_value"]
            for loc in entry["endpoint_config"].get("endpoints", [])
            for lb in loc.get("lb_endpoints", [])
        }
        if ports != {port}:
            raise RuntimeError(f"{envoy.name}: endpoint ports {ports}, expected {port}")


def _route_weights(dump: dict[str, Any], vhost: str) -> list[int] | None:
    for config in dump.get("configs", []):
        route_config = config.get("route_config", {})
        for vh in route_config.get("virtual_hosts", []):
            if vh.get("name") == vhost:
                clusters = vh["routes"][0]["route"].get("weighted_clusters", {}).get("clusters")
                return [int(c["weight"]) for c in clusters or []]
    return None


def print_table(scenarios: list[Scenario], changes: int) -> None:
    group = f"{'reload':>6} {'sent':>5} {'ACKed':>6} {'':>5}"
    stats = f"{'p50':>6} {'p50':>5} {'p50':>6} {'max':>5}"
    width = len(group)
    print(f"\n{'':>6} {'':>8} | {'VS edit -> RDS':^{width}} | {'SE edit -> EDS':^{width}} |")
    print(f"{'envoys':>6} {'debounce':>8} | {group} | {group} | CDS/LDS/RDS pushed")
    print(f"{'':>6} {'ms':>8} | {stats} | {stats} | on EDS edit")
    for sc in scenarios:
        cells = [
            f"{statistics.median(sc.build_ms[kind]):6.0f} {samples.row()}"
            for kind, samples in (("rds", sc.rds), ("eds", sc.eds))
        ]
        print(
            f"{sc.n:>6} {sc.debounce_ms:>8} | {cells[0]} | {cells[1]} | "
            f"{sc.cds_pushed_on_eds_change}/{len(sc.eds.acked_ms)}"
        )
    print(
        f"\n{changes} VS edits and {changes} endpoint edits per row. sent / ACKed: ms from the "
        "start of the atomic write until every Envoy had been sent / had ACKed a new version, "
        f"as /debug/syncz shows it (polled every {POLL_S * 1000:.0f} ms). reload: the control "
        "plane's own 'built in' time (read the directory, parse + validate every file, build "
        "the snapshot)."
    )


@contextlib.contextmanager
def bench_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        yield Path(tmp)


def run(
    sizes: list[int], debounces: list[int], changes: int, api_type: ApiType = "GRPC"
) -> list[Scenario]:
    scenarios: list[Scenario] = []
    with bench_dir() as workdir:
        config = ConfigDir(workdir / "config")
        files = generate_mesh(SERVICES, ENDPOINTS, NAMESPACES, VS_FRACTION)
        for name, text in files.items():
            (config.path / name).parent.mkdir(parents=True, exist_ok=True)
            config.write(name, text)
        in_default = [
            s for s in services(SERVICES, NAMESPACES, VS_FRACTION) if s.namespace == "default"
        ]
        targets = [next(s for s in in_default if s.has_vs), in_default[-1]]
        print(
            f"mesh: {SERVICES} services x {ENDPOINTS} endpoints over {NAMESPACES} namespaces "
            f"({mesh_size(files)}); editing {targets[0].file('vs')} and {targets[1].file('se')}; "
            f"Envoy ADS api_type {api_type}",
            flush=True,
        )
        bench = Bench(workdir, config, targets, api_type)
        try:
            order = list(debounces)
            for n in sizes:
                for debounce in order:
                    if bench.cp is None or bench.cp.debounce_ms != debounce:
                        bench.start_control_plane(debounce)
                    started = time.perf_counter()
                    bench.add_envoys(n)
                    bench.wait_synced()
                    sc = Scenario(n, debounce)
                    print(
                        f"N={n} debounce={debounce} ms: synced "
                        f"({time.perf_counter() - started:.1f} s)",
                        end="",
                        flush=True,
                    )
                    for _ in range(changes):
                        bench.vs_change(sc)
                    for _ in range(changes):
                        bench.eds_change(sc)
                    print(f", {sc.checks} Envoy cross-checks passed", flush=True)
                    scenarios.append(sc)
                # keep the current debounce for the next N: one control-plane restart fewer
                order.reverse()
        finally:
            bench.stop_all()
    return scenarios


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoys", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--debounce-ms", type=int, nargs="+", default=[100, 10])
    parser.add_argument("--changes", type=int, default=10, help="edits of each kind per row")
    parser.add_argument(
        "--api-type",
        choices=["GRPC", "DELTA_GRPC"],
        default="GRPC",
        help="Envoy's ADS flavour: state of the world (default) or delta",
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` that stops every process still runs.
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    scenarios = run(args.envoys, args.debounce_ms, args.changes, args.api_type)
    print_table(scenarios, args.changes)
    print(f"(total benchmark time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
