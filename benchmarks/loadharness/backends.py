"""Where a cell's mesh lives and how a change is made to it: files, or a Kubernetes API.

Both start the real ``shoal control-plane`` (tests/harness's `ControlPlane`) on the mesh of
meshgen.py and hand the scenarios a `Mesh`: the control plane, and the two edits they make.

* `file_mesh`: the mesh as files in a temporary config directory (one file per resource, or
  every ServiceEntry in one ``registry.yaml`` with the cell's ``one_file``); an endpoint
  change rewrites one ServiceEntry's file (or the whole registry file with that document
  changed, as an export would), a VirtualService change one file.
* `kube_mesh`: the same mesh as Kubernetes objects (kubemesh.py) in the fake API server, in
  its own process (kubefake.py), and ``shoal control-plane --kubernetes --kubeconfig F``
  without a config directory; an endpoint change is a merge patch of one EndpointSlice's
  ports over HTTP (what the EndpointSlice controller writes when a Service's targetPort
  changes), a VirtualService change a merge patch of the custom object's spec.

Times start just before the write in both, so they include the file watcher or the API
server and its watch, the debounce, the rebuild and the push.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from loadharness import procstat
from loadharness.kubefake import KubeFakeProcess
from loadharness.measure import Cell, Options

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.adminhttp import get_json
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.kubeapi.runner import write_kubeconfig
from kubemesh import slice_name, slice_ports
from meshgen import (
    REGISTRY_FILE,
    ServiceSpec,
    generate_mesh,
    registry,
    service_entry,
    virtual_service,
)
from meshgen import services as mesh_services


class Mesh(Protocol):
    cp: ControlPlane
    # figures of the start measured by the backend (printed by kube_scale_bench)
    startup: dict[str, float]

    async def set_endpoint_port(self, svc: ServiceSpec, endpoints: int, port: int) -> None: ...

    async def set_vs_weights(self, svc: ServiceSpec, v1: int, v2: int) -> None: ...


def _log_tail(cp: ControlPlane) -> None:
    print(f"--- control plane stderr (tail) ---\n{cp.stderr_tail(30)}", file=sys.stderr)


@dataclass
class FileMesh:
    cp: ControlPlane
    config: ConfigDir
    cell: Cell
    startup: dict[str, float] = field(default_factory=dict)
    # the one-file layout's ServiceEntries, by service index (empty: one file each)
    entries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cell.one_file:
            specs = mesh_services(self.cell.services, self.cell.namespaces, self.cell.vs_fraction)
            self.entries = [service_entry(svc, self.cell.endpoints) for svc in specs]

    async def set_endpoint_port(self, svc: ServiceSpec, endpoints: int, port: int) -> None:
        text = service_entry(svc, endpoints, port=port)
        if not self.cell.one_file:
            self.config.write(svc.file("se"), text)
            return
        self.entries[svc.index] = text
        self.config.write(REGISTRY_FILE, registry(self.entries))

    async def set_vs_weights(self, svc: ServiceSpec, v1: int, v2: int) -> None:
        self.config.write(svc.file("vs"), virtual_service(svc, v1, v2))


@contextlib.asynccontextmanager
async def file_mesh(cell: Cell, opts: Options) -> AsyncIterator[FileMesh]:
    with tempfile.TemporaryDirectory(prefix="shoal-scale-") as tmp:
        config = ConfigDir(Path(tmp) / "config")
        files = generate_mesh(
            cell.services, cell.endpoints, cell.namespaces, cell.vs_fraction,
            sidecar_scope=cell.scoped, one_file=cell.one_file,
        )  # fmt: skip
        for name, text in files.items():
            (config.path / name).parent.mkdir(parents=True, exist_ok=True)
            (config.path / name).write_text(text)
        cp = ControlPlane(config.path, workdir=Path(tmp), debounce_ms=opts.debounce_ms)
        try:
            t0 = time.monotonic()
            cp.start()
            ready = cp.wait_ready(timeout=120) - t0
            assert cp.proc is not None
            yield FileMesh(cp, config, cell, {"ready_s": ready, "ready_rss_mb": _rss(cp)})
        except BaseException:
            _log_tail(cp)
            raise
        finally:
            cp.stop()


@dataclass
class KubeMesh:
    cp: ControlPlane
    fake: KubeFakeProcess
    session: aiohttp.ClientSession
    startup: dict[str, float] = field(default_factory=dict)

    async def _patch(self, path: str, body: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self.session.patch(
            self.fake.url + path, data=json.dumps(body), headers=headers
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"PATCH {path}: {resp.status} {await resp.text()}")

    async def set_endpoint_port(self, svc: ServiceSpec, endpoints: int, port: int) -> None:
        path = (
            f"/apis/discovery.k8s.io/v1/namespaces/{svc.namespace}/endpointslices/{slice_name(svc)}"
        )
        await self._patch(path, {"ports": slice_ports(port)})

    async def set_vs_weights(self, svc: ServiceSpec, v1: int, v2: int) -> None:
        path = f"/apis/networking.istio.io/v1/namespaces/{svc.namespace}/virtualservices/{svc.name}"
        route = [
            {"destination": {"host": svc.host, "subset": subset, "port": {"number": 80}},
             "weight": weight}
            for subset, weight in (("v1", v1), ("v2", v2))
        ]  # fmt: skip
        await self._patch(path, {"spec": {"http": [{"name": "split", "route": route}]}})


@contextlib.asynccontextmanager
async def kube_mesh(cell: Cell, opts: Options) -> AsyncIterator[KubeMesh]:
    with tempfile.TemporaryDirectory(prefix="shoal-kube-scale-") as tmp:
        work = Path(tmp)
        fake = KubeFakeProcess(
            cell.services, cell.endpoints, cell.namespaces, cell.vs_fraction,
            scoped=cell.scoped, log_path=work / "kubeapi.stderr.log",
        )  # fmt: skip
        info = fake.start()
        kubeconfig = write_kubeconfig(work / "kubeconfig", fake.url)
        cp = ControlPlane(
            None, workdir=work, debounce_ms=opts.debounce_ms,
            extra_args=["--kubernetes", "--kubeconfig", str(kubeconfig)],
        )  # fmt: skip
        try:
            t0 = time.monotonic()
            cp.start()
            ready = cp.wait_ready(timeout=300) - t0
            kube = get_json(cp.admin_url + "/debug/kubernetes")
            startup = {
                "objects": float(info["objects"]),
                "seed_s": float(info["seed_s"]),
                "sync_s": float(kube.get("synced_after_s") or "nan"),
                "ready_s": ready,
                "ready_rss_mb": _rss(cp),
                "apiserver_rss_mb": procstat.rss_mb(fake.pid),
            }
            async with aiohttp.ClientSession() as session:
                yield KubeMesh(cp, fake, session, startup)
        except BaseException:
            _log_tail(cp)
            raise
        finally:
            cp.stop()
            fake.stop()


def _rss(cp: ControlPlane) -> float:
    assert cp.proc is not None
    return procstat.rss_mb(cp.proc.pid)
