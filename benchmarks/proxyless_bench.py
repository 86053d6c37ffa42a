"""What a proxyless gRPC client costs the control plane, beside a sidecar in the same process.

For S services x 10 endpoints (K = 10 namespaces, half with a 90/10 VirtualService; see
meshgen.py) this times, each on a fresh generation of the same snapshot:

* a sidecar's whole view in `default` (the baseline: what the mesh pays already);
* a proxyless client's whole view in `default` (API listeners for every dial name of every
  service port, a route table per service port, EDS clusters and weighted assignments);
* a second proxyless client in the same namespace (shared: should cost a lookup);
* one VirtualService edit and one endpoint edit (`Pipeline.apply` of the one file, then the
  views) with a sidecar and a proxyless client connected, beside the same edit with the
  sidecar alone: what proxyless clients add to each change.

Median of 5 (time.perf_counter, gc.collect() before each). Run:
`.venv/bin/python benchmarks/proxyless_bench.py [--services 100 1000]`.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from meshgen import generate_mesh, service_entry, services, virtual_service
from shoal.api import Change
from shoal.engine import Pipeline
from shoal.generate import LISTENER, ConfigGenerator
from shoal.model import Proxy, parse_proxy

SIDECAR = parse_proxy(
    "sidecar~10.9.0.1~app.default~default.svc.cluster.local",
    {"INTERCEPTION_MODE": "NONE", "OUTBOUND_PORT": "15001"},
)
CLIENT = parse_proxy(
    "sidecar~10.9.0.2~grpc.default~default.svc.cluster.local", {"GENERATOR": "grpc"}
)
CLIENT2 = parse_proxy(
    "sidecar~10.9.0.3~grpc2.default~default.svc.cluster.local", {"GENERATOR": "grpc"}
)


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run(s: int) -> None:
    files = generate_mesh(s, 10, 10, 0.5)
    pipeline = Pipeline()
    build = pipeline.load(files)
    snapshot = build.snapshot

    def fresh() -> ConfigGenerator:
        return ConfigGenerator(snapshot)

    sidecar = median_ms(lambda: fresh().view(SIDECAR))
    proxyless = median_ms(lambda: fresh().view(CLIENT))

    def second() -> None:
        gen = fresh()
        gen.view(CLIENT)
        start = time.perf_counter()
        gen.view(CLIENT2)
        second_ms.append((time.perf_counter() - start) * 1000)

    second_ms: list[float] = []
    median_ms(second)
    listeners = len(fresh().view(CLIENT).of(LISTENER))
    svc = next(x for x in services(s, 10, 0.5) if x.has_vs)
    assert pipeline.generation is not None
    pipeline.generation.view(CLIENT)
    pipeline.generation.view(SIDECAR)
    flip = [90]

    def edit(kind: str, proxies: tuple[Proxy, ...] = (CLIENT,)) -> None:
        flip[0] = 140 - flip[0] if kind == "vs" else flip[0]
        if kind == "vs":
            change = Change(svc.file("vs"), virtual_service(svc, flip[0], 100 - flip[0]))
        else:
            flip.append(len(flip))
            change = Change(svc.file("se"), service_entry(svc, 10, 8080 + len(flip)))
        generation = pipeline.apply([change]).generation
        for proxy in proxies:
            generation.view(proxy)

    # baseline: the same edits with only a sidecar connected
    vs_base = median_ms(lambda: edit("vs", (SIDECAR,)))
    ep_base = median_ms(lambda: edit("se", (SIDECAR,)))
    vs_edit = median_ms(lambda: edit("vs", (SIDECAR, CLIENT)))
    ep_edit = median_ms(lambda: edit("se", (SIDECAR, CLIENT)))
    print(
        f"S={s:5d}: sidecar view {sidecar:7.1f} ms | proxyless view {proxyless:7.1f} ms "
        f"({listeners} API listeners) | 2nd client {statistics.median(second_ms):.3f} ms | "
        f"VS edit + views {vs_edit:6.1f} ms (sidecar only {vs_base:6.1f}) | "
        f"endpoint edit + views {ep_edit:6.1f} ms (sidecar only {ep_base:6.1f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, nargs="+", default=[100, 1000])
    for s in p.parse_args().services:
        run(s)


if __name__ == "__main__":
    main()
