"""Admission webhook cost: what a pod creation or a `kubectl apply` waits for shoal.

In one process, the same run:

* **pure**: `injection_patch` (inject + JSON Patch diff) for a typical Deployment pod, and
  `validate_object` for a bookinfo-sized VirtualService, each timed over `--n` calls;
* **HTTPS**: `--n` sequential AdmissionReview POSTs to `/inject` and `/validate` of the webhook
  server (`controlplane/webhooks.py`, certificate from a fresh shoal CA) over one keep-alive
  TLS connection, beside the **floor**: `GET /ready` on the same server and connection (TLS,
  HTTP, aiohttp routing, no admission work), so the difference is the webhook's own cost.

The API server calls mutating webhooks one after another with a 10 s timeout; Istio documents
its injector in milliseconds. Run: `.venv/bin/python benchmarks/webhook_bench.py [--n 500]`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import ssl
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from shoal.ca.authority import CertificateAuthority
from shoal.controlplane.webhooks import Webhooks
from shoal.kube.inject import InjectorSettings, injection_patch
from shoal.kube.validate import validate_object

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "reviews-v1-7d4b9c6f5-",
        "namespace": "shop",
        "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "7d4b9c6f5"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r"}],
    },
    "spec": {
        "serviceAccountName": "bookinfo-reviews",
        "containers": [
            {
                "name": "reviews",
                "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.1",
                "ports": [{"containerPort": 9080}],
                "env": [{"name": "LOG_DIR", "value": "/tmp/logs"}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    },
}
VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {
        "hosts": ["reviews"],
        "http": [
            {
                "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
            },
            {
                "route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 75},
                    {"destination": {"host": "reviews", "subset": "v3"}, "weight": 25},
                ]
            },
        ],
    },
}


def _review(obj: dict[str, Any], kind: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": "v1", "kind": kind},
            "namespace": "shop",
            "operation": "CREATE",
            "object": obj,
        },
    }


def _figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.3f} ms   p99 {p99 * 1000:7.3f} ms"


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


async def _time_async(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - start)
    return out


async def main(n: int) -> None:
    settings = InjectorSettings()
    print(f"webhook_bench: {n} calls each, sequential, one process\n")
    print("pure (no I/O)")
    print(
        f"  inject + JSON Patch       {_figures(_time(lambda: injection_patch(POD, settings), n))}"
    )
    print(f"  validate VirtualService   {_figures(_time(lambda: validate_object(VS, 'shop'), n))}")

    with tempfile.TemporaryDirectory() as tmp:
        ca = CertificateAuthority(Path(tmp) / "ca")
        hooks = Webhooks(ca, settings)
        port = await hooks.start("127.0.0.1", 0)
        trust = ssl.create_default_context(cafile=str(Path(tmp) / "ca" / "root-cert.pem"))
        base = f"https://127.0.0.1:{port}"
        try:
            connector = aiohttp.TCPConnector(ssl=trust, limit=1)
            async with aiohttp.ClientSession(connector=connector) as http:

                async def ready() -> None:
                    async with http.get(base + "/ready") as resp:
                        await resp.read()

                async def post(path: str, review: dict[str, Any]) -> None:
                    body = copy.deepcopy(review)
                    async with http.post(base + path, json=body) as resp:
                        assert resp.status == 200
                        await resp.read()

                pod_review = _review(POD, "Pod", "")
                vs_review = _review(VS, "VirtualService", "networking.istio.io")
                await _time_async(ready, 50)  # warm the connection and the server
                floor = await _time_async(ready, n)
                inject = await _time_async(lambda: post("/inject", pod_review), n)
                validate = await _time_async(lambda: post("/validate", vs_review), n)
        finally:
            await hooks.stop()
    print("\nHTTPS, one keep-alive TLS connection")
    print(f"  floor: GET /ready         {_figures(floor)}")
    print(f"  POST /inject              {_figures(inject)}")
    print(f"  POST /validate            {_figures(validate)}")
    print(
        f"\nwebhook's own cost (median minus floor): inject "
        f"{(statistics.median(inject) - statistics.median(floor)) * 1000:.3f} ms, validate "
        f"{(statistics.median(validate) - statistics.median(floor)) * 1000:.3f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=500)
    asyncio.run(main(parser.parse_args().n))
