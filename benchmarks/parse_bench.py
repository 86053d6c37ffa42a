"""Cold parse + validate of a one-file registry, beside libyaml's own load of the same text.

The registry is what an exported inventory or a ``kubectl get -o yaml`` dump looks like: S
STATIC ServiceEntries of E endpoints each (default 1,000 x 10, about 1.1 MB), every one a
document of one file. Each row is the median of ``--reps`` cold runs (a fresh ``ConfigStore``,
``gc.collect()`` before each), all in this process:

* **floor: libyaml load**: ``yaml.load_all(text, CSafeLoader)`` into plain dicts;
* **libyaml compose**: ``yaml.compose_all`` with the same C loader, one document at a time
  (nodes with positions, the input shoal's loader starts from);
* **shoal YAML load**: ``load_documents`` (data and a lazy path -> line map per document);
* **shoal validate**: the typed models of every document (``parse_documents`` minus the
  YAML load), pydantic's share;
* **shoal parse + validate**: ``ConfigStore().update({file: text})``, everything a control
  plane does before it builds a snapshot (also cross-resource checks).

The goal printed last: parse + validate within 1.5x of the floor. Run with
``.venv/bin/python benchmarks/parse_bench.py [--services 1000 --endpoints 10 --reps 5]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterable

import yaml

from shoal.api import ConfigStore
from shoal.api.load import parse_documents
from shoal.api.yamlload import load_documents

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def registry(services: int, endpoints: int) -> str:
    """One file of `services` ServiceEntries with `endpoints` endpoints each."""
    docs = []
    for s in range(services):
        eps = "\n".join(
            f"  - address: 10.{s // 250}.{s % 250}.{e + 1}\n"
            f"    ports: {{http: 8080}}\n"
            f"    labels: {{app: svc-{s}, version: v{e % 2 + 1}}}"
            for e in range(endpoints)
        )
        docs.append(
            "apiVersion: networking.istio.io/v1\n"
            "kind: ServiceEntry\n"
            "metadata:\n"
            f"  name: svc-{s}\n"
            f"  namespace: ns-{s % 10}\n"
            "spec:\n"
            f"  hosts: [svc-{s}.ns-{s % 10}.svc.cluster.local]\n"
            "  location: MESH_INTERNAL\n"
            "  resolution: STATIC\n"
            "  ports:\n"
            "  - number: 80\n"
            "    name: http\n"
            "    protocol: HTTP\n"
            "  endpoints:\n" + eps + "\n"
        )
    return "---\n".join(docs)


def _drain(items: Iterable[object]) -> None:
    for _ in items:
        pass


def timed(fn: Callable[[], object], reps: int) -> float:
    """Median seconds of `reps` calls of `fn`, a full collection before each."""
    out = []
    for _ in range(reps):
        gc.collect()
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    text = registry(args.services, args.endpoints)
    file = "registry.yaml"
    # the text is valid: every document must come out as a resource
    check = ConfigStore().update({file: text})
    assert not check.errors and len(check.resources) == args.services, check.errors[:3]
    documents = load_documents(file, text)

    rows = [
        (
            "floor: libyaml load",
            timed(lambda: list(yaml.load_all(text, Loader=_LOADER)), args.reps),
        ),
        (
            "libyaml compose",
            timed(lambda: _drain(yaml.compose_all(text, Loader=_LOADER)), args.reps),
        ),
        ("shoal YAML load", timed(lambda: load_documents(file, text), args.reps)),
        ("shoal parse_documents", timed(lambda: parse_documents(file, text), args.reps)),
        ("shoal parse + validate", timed(lambda: ConfigStore().update({file: text}), args.reps)),
    ]
    floor = rows[0][1]
    print(
        f"one-file registry: {args.services} ServiceEntries x {args.endpoints} endpoints, "
        f"{len(text) / 1e6:.2f} MB, {len(documents)} documents; Python {sys.version.split()[0]}, "
        f"PyYAML {yaml.__version__} ({_LOADER.__name__}); median of {args.reps} cold runs"
    )
    print(f"{'':<26} {'ms':>8} {'x floor':>8}")
    for name, seconds in rows:
        print(f"{name:<26} {seconds * 1000:8.0f} {seconds / floor:7.2f}x")
    yaml_ms, docs_ms = rows[2][1], rows[3][1]
    # parse_documents = the YAML load + typed models of every document (pydantic)
    print(f"{'  of which validation':<26} {(docs_ms - yaml_ms) * 1000:8.0f}")
    ratio = rows[-1][1] / floor
    verdict = "met" if ratio <= 1.5 else "NOT met"
    print(f"parse + validate / libyaml load: {ratio:.2f}x (goal <= 1.5x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
