"""How long the control plane's pure pipeline takes, from Istio YAML to xDS wire bytes.

For meshes of S = 100, 1000, 2000 services x E = 10 endpoints (K = 10 namespaces, half the
services with a 90/10 VirtualService; see meshgen.py) this times, in one process:

* YAML parse + validation (``ConfigStore.update`` on a fresh store), and the floor for it:
  libyaml alone loading the same text into plain dicts;
* ``build_snapshot``;
* cold generation for one sidecar in ``default``: all clusters, endpoints, its route table
  and listeners (each on a fresh ``ConfigGenerator``), then the whole ``view`` at once;
* the marginal cost of a second sidecar in the same namespace (everything shared but its
  listener, since NONE-mode sidecars each have their own ports), and of a sidecar in another
  namespace (its own route table: short names resolve per namespace);
* the wire encoding of the full CDS + EDS state-of-the-world response for one proxy, against
  three baselines on the very same protobuf objects: serializing them once, parsing them from
  bytes (upb building the objects in C), and what a control plane that builds a
  ``DiscoveryResponse`` of ``Any``s per proxy pays; plus ``json_format.ParseDict`` of the same
  clusters and assignments, the usual "config as dicts" way to build them in Python;
* what one edit costs the control plane end to end (`Pipeline.apply` of the one changed
  file: store, snapshot, generation taking over from the previous one, view): a
  VirtualService weight change and an endpoint port change.

Every figure is the median of a few repetitions (time.perf_counter, ``gc.collect()`` before
each). Run with ``make bench`` or ``.venv/bin/python benchmarks/generate_bench.py``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message

from meshgen import generate_mesh, mesh_size, service_entry, services, virtual_service
from shoal.api import Change, ConfigStore, Resource
from shoal.engine import Pipeline
from shoal.generate import CLUSTER, ENDPOINT, ConfigGenerator, PreparedResource
from shoal.generate.prepared import unpack
from shoal.model import MeshSnapshot, Proxy, build_snapshot, parse_proxy
from shoal.xds.messages import Response
from shoal.xds.wire import encode_sotw

T = TypeVar("T")

SIZES = (100, 1000, 2000)
ENDPOINTS = 10
NAMESPACES = 10
VS_FRACTION = 0.5
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def sidecar(name: str, namespace: str, outbound_port: int) -> Proxy:
    """A NONE-mode sidecar as the harness's Envoys identify themselves."""
    return parse_proxy(
        f"sidecar~127.0.0.1~{name}.{namespace}~{namespace}.svc.cluster.local",
        {
            "NAMESPACE": namespace,
            "LABELS": {"app": name},
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": str(outbound_port),
            "INBOUND_PORT": str(outbound_port + 1),
        },
    )


def timed(
    setup: Callable[[], T], run: Callable[[T], object], reps: int, *, gc_off: bool = False
) -> float:
    """Median milliseconds of ``run(setup())`` over ``reps`` runs; setup is not timed.
    With ``gc_off`` the cyclic garbage collector is disabled while ``run`` runs."""
    samples = []
    for _ in range(reps):
        state = setup()
        gc.collect()
        if gc_off:
            gc.disable()
        try:
            start = time.perf_counter()
            run(state)
            samples.append((time.perf_counter() - start) * 1000)
        finally:
            gc.enable()
    return statistics.median(samples)


def once(run: Callable[[], object], reps: int, *, gc_off: bool = False) -> float:
    return timed(lambda: None, lambda _: run(), reps, gc_off=gc_off)


@dataclass
class Result:
    size: int
    reps: int
    description: str = ""
    rows: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def response(type_url: str, resources: list[PreparedResource]) -> Response:
    return Response(type_url, "bench-version", "1", tuple(resources))


def naive_response(type_url: str, messages: list[Message]) -> bytes:
    """What a control plane without pre-serialized resources builds for every proxy."""
    resp = discovery_pb2.DiscoveryResponse(version_info="bench-version", type_url=type_url)
    resp.nonce = "1"
    for msg in messages:
        packed = any_pb2.Any()
        packed.Pack(msg)
        resp.resources.append(packed)
    data: bytes = resp.SerializeToString(deterministic=True)
    return data


def reload(pipeline: Pipeline, change: Change, proxy: Proxy) -> object:
    """One edit through the control plane's pure path, up to the edited proxy's view."""
    generation, _ = pipeline.apply([change])
    return generation.view(proxy)


def bench(size: int, reps: int) -> Result:
    files = generate_mesh(size, ENDPOINTS, NAMESPACES, VS_FRACTION)
    res = Result(size, reps, mesh_size(files))
    rows = res.rows
    heavy = min(reps, 3 if size <= 1000 else 2)  # rows that take seconds at S=2000
    p1 = sidecar("bench-1", "default", 20001)
    p2 = sidecar("bench-2", "default", 20003)
    p3 = sidecar("bench-3", "ns-1", 20005)

    # -- config: YAML text to validated resources, then the snapshot ----------------------
    texts = list(files.values())
    rows["parse floor: libyaml load only"] = once(
        lambda: [list(yaml.load_all(t, Loader=_YAML_LOADER)) for t in texts], heavy
    )
    rows["parse + validate (ConfigStore.update)"] = once(lambda: ConfigStore().update(files), heavy)
    result = ConfigStore().update(files)
    if result.errors:
        raise SystemExit(f"generated mesh does not validate: {result.errors[:3]}")
    resources: tuple[Resource, ...] = result.resources
    rows["snapshot build"] = once(lambda: build_snapshot("bench", resources), reps)
    rows["snapshot build, gc disabled"] = once(
        lambda: build_snapshot("bench", resources), reps, gc_off=True
    )
    snap: MeshSnapshot = build_snapshot("bench", resources)

    # -- generation: cold, then what more sidecars cost -----------------------------------
    fresh = lambda: ConfigGenerator(snap)  # noqa: E731
    rows["cold CDS: all clusters"] = timed(fresh, lambda g: g.clusters(), reps)
    rows["cold EDS: all assignments"] = timed(fresh, lambda g: g.endpoints(), reps)
    rows["cold RDS: sidecar 1 route table"] = timed(fresh, lambda g: g.routes(p1), reps)
    rows["cold LDS: sidecar 1 listeners"] = timed(fresh, lambda g: g.listeners(p1), reps)
    rows["cold view, sidecar 1 (all four)"] = timed(fresh, lambda g: g.view(p1), reps)

    def warm() -> ConfigGenerator:
        g = ConfigGenerator(snap)
        g.view(p1)
        return g

    rows["+ sidecar 2, same namespace"] = timed(warm, lambda g: g.view(p2), reps)
    rows["+ sidecar 3, other namespace"] = timed(warm, lambda g: g.view(p3), reps)

    # -- the wire: full CDS + EDS for one proxy ---------------------------------------------
    view = warm().view(p1)
    cds = list(view.of(CLUSTER).values())
    eds = list(view.of(ENDPOINT).values())
    encoded = encode_sotw(response(CLUSTER, cds)) + encode_sotw(response(ENDPOINT, eds))
    rows["encode CDS+EDS response (shoal wire)"] = once(
        lambda: (encode_sotw(response(CLUSTER, cds)), encode_sotw(response(ENDPOINT, eds))),
        reps,
    )
    clusters: list[Message] = [unpack(r, cluster_pb2.Cluster()) for r in cds]
    cla: list[Message] = [unpack(r, endpoint_pb2.ClusterLoadAssignment()) for r in eds]
    messages = clusters + cla
    blobs = [m.SerializeToString(deterministic=True) for m in messages]
    rows["floor: SerializeToString same objects"] = once(
        lambda: [m.SerializeToString(deterministic=True) for m in messages], reps
    )
    rows["floor: ParseFromString same objects"] = once(
        lambda: (
            [cluster_pb2.Cluster.FromString(b) for b in blobs[: len(clusters)]],
            [endpoint_pb2.ClusterLoadAssignment.FromString(b) for b in blobs[len(clusters) :]],
        ),
        reps,
    )
    rows["naive: DiscoveryResponse of Anys"] = once(
        lambda: (naive_response(CLUSTER, clusters), naive_response(ENDPOINT, cla)), reps
    )
    dicts = [json_format.MessageToDict(m) for m in messages]
    rows["naive: json_format.ParseDict same objects"] = once(
        lambda: (
            [json_format.ParseDict(d, cluster_pb2.Cluster()) for d in dicts[: len(clusters)]],
            [
                json_format.ParseDict(d, endpoint_pb2.ClusterLoadAssignment())
                for d in dicts[len(clusters) :]
            ],
        ),
        heavy - 1 or 1,
    )

    # -- one edit, end to end in-process ----------------------------------------------------
    # Each repetition is a real one-file edit of what the warm store holds (new weights or a
    # new port every time), so a store that skipped unchanged input could not cheat here.
    target = next(s for s in services(size, NAMESPACES, VS_FRACTION) if s.has_vs)
    warm = Pipeline("bench")
    warm.load(files).generation.view(p1)
    edits = itertools.count(1)

    def edit_vs() -> Change:
        v2 = 10 + next(edits)
        return Change.file(target.file("vs"), virtual_service(target, 100 - v2, v2))

    def edit_se() -> Change:
        port = 9000 + next(edits)
        return Change.file(target.file("se"), service_entry(target, ENDPOINTS, port=port))

    rows["edit 1 VS: store+snapshot+view"] = timed(edit_vs, lambda c: reload(warm, c, p1), heavy)
    rows["edit 1 SE port: store+snapshot+view"] = timed(
        edit_se, lambda c: reload(warm, c, p1), heavy
    )

    res.notes.append(
        f"S={size}: {res.description}; {len(cds)} clusters, {len(eds)} assignments, "
        f"CDS+EDS response {len(encoded) / 1e6:.2f} MB"
    )
    return res


def fmt(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 1:
        return f"{ms:.1f}"
    return f"{ms:.3f}"


def ratio(a: float, b: float) -> str:
    return f"x{b / a:.1f}" if a > 0 else "-"


def print_table(results: list[Result]) -> None:
    names = list(results[0].rows)
    width = max(len(n) for n in names)
    header = [f"S={r.size}" for r in results]
    ratios = [f"{b.size}/{a.size}" for a, b in itertools.pairwise(results)]
    print(
        f"{'ms (median)':<{width}}  "
        + "  ".join(f"{h:>8}" for h in header)
        + "  "
        + "  ".join(f"{h:>9}" for h in ratios)
    )
    for name in names:
        values = [r.rows[name] for r in results]
        growth = [ratio(a, b) for a, b in itertools.pairwise(values)]
        print(
            f"{name:<{width}}  "
            + "  ".join(f"{fmt(v):>8}" for v in values)
            + "  "
            + "  ".join(f"{g:>9}" for g in growth)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--reps", type=int, default=5, help="repetitions (fewer for big S)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(
        f"shoal generation benchmark: E={ENDPOINTS} endpoints/service, K={NAMESPACES} "
        f"namespaces, VirtualService on {VS_FRACTION:.0%} of services; "
        f"python {sys.version.split()[0]}"
    )
    results = []
    for size in args.sizes:
        reps = args.reps if size <= 1000 else max(3, args.reps - 2)
        results.append(bench(size, reps))
        print(results[-1].notes[0], f"(median of {reps})", flush=True)
    print()
    print_table(results)
    print(f"\n(total benchmark time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
