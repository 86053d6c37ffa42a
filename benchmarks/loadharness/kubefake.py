"""The fake Kubernetes API server (tests/harness/kubeapi) in its own process, holding a mesh.

``KubeFakeProcess(cell)`` starts ``python -m loadharness.kubefake`` with the cell's shape; the
child stores `kubemesh.kube_objects` directly (no HTTP, no admission: as if the cluster had
always held them), with the CRDs `shoal install` registers, then serves plain HTTP on a free
loopback port and prints one JSON line (port, objects, seconds spent storing them). A process
of its own, as the real API server is: its CPU is not the control plane's nor the harness's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_BENCHMARKS = Path(__file__).resolve().parents[1]
_TESTS = _BENCHMARKS.parent / "tests"


class KubeFakeProcess:
    """The child process; ``start()`` returns once it serves (its JSON line as a dict)."""

    def __init__(self, services: int, endpoints: int, namespaces: int, vs_fraction: float,
                 *, scoped: bool, log_path: Path) -> None:  # fmt: skip
        self.args = [
            "--services", str(services), "--endpoints", str(endpoints),
            "--namespaces", str(namespaces), "--vs-fraction", str(vs_fraction),
            *(["--scoped"] if scoped else []),
        ]  # fmt: skip
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 300.0) -> dict[str, Any]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_TESTS), str(_BENCHMARKS)])}
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loadharness.kubefake", *self.args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                cwd=_BENCHMARKS,
            )  # fmt: skip
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()  # the child prints nothing else before it
        if not line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"fake API server did not start; see {self.log_path}")
        self.info = json.loads(line)
        return self.info

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


# ------------------------------------------------------------------------------- the child
async def _serve(args: argparse.Namespace) -> None:
    from harness.kubeapi.server import KubeAPIServer
    from kubemesh import kube_objects
    from shoal.kube.manifests_crds import crds

    started = time.perf_counter()
    api = KubeAPIServer(history_size=100_000)
    crd = api.type("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    for obj in crds():
        api.create(crd, obj)
    objects = kube_objects(
        args.services, args.endpoints, args.namespaces, args.vs_fraction,
        sidecar_scope=args.scoped,
    )  # fmt: skip
    for obj in objects:
        api.create(None, obj)
    seeded = time.perf_counter() - started
    async with api:
        info = {"port": api.port, "objects": len(objects), "seed_s": round(seeded, 2)}
        print(json.dumps(info), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, required=True)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--namespaces", type=int, default=10)
    p.add_argument("--vs-fraction", type=float, default=0.5)
    p.add_argument("--scoped", action="store_true")
    asyncio.run(_serve(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
