"""Small helpers to build snapshots from Istio YAML text for generation tests."""

from __future__ import annotations

import weakref

from shoal.engine import Pipeline
from shoal.generate import ConfigGenerator
from shoal.model import MeshSnapshot, Proxy, parse_proxy

REVIEWS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [240.0.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 9080, name: http-alt, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, ports: {http: 8001, http-alt: 9001}, labels: {version: v1}}
  - {address: 10.0.0.2, ports: {http: 8002, http-alt: 9002}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}, uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: v2, port: {number: 80}}}]
  - route:
    - {destination: {host: reviews, subset: v1, port: {number: 80}}, weight: 80}
    - {destination: {host: reviews, subset: v2, port: {number: 80}}, weight: 20}
"""

RATINGS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.1.1}]
"""


def pipeline(*texts: str) -> Pipeline:
    """A pipeline that loaded `texts` (one file each) without an error."""
    built = Pipeline("test")
    built.load({f"f{i}.yaml": t for i, t in enumerate(texts)})
    assert not built.errors, [str(e) for e in built.errors]
    return built


class Steps:
    """One pipeline moved from one set of files to the next, as a control plane would be:
    each call loads `texts` (one file each) and gives the generation it made."""

    def __init__(self) -> None:
        self.pipeline = Pipeline("test")

    def __call__(self, *texts: str) -> ConfigGenerator:
        generation = self.pipeline.load({f"f{i}.yaml": t for i, t in enumerate(texts)}).generation
        assert not self.pipeline.errors, [str(e) for e in self.pipeline.errors]
        return generation


# the pipeline each generation of `moved_on` came from, so the next one moves on from there
_STEPS: weakref.WeakKeyDictionary[ConfigGenerator, Steps] = weakref.WeakKeyDictionary()


def moved_on(*texts: str, previous: ConfigGenerator | None = None) -> ConfigGenerator:
    """The generation after loading `texts` into `previous`'s pipeline (a new one if None)."""
    steps = _STEPS[previous] if previous is not None else Steps()
    out = steps(*texts)
    _STEPS[out] = steps
    return out


def generator(*texts: str) -> ConfigGenerator:
    generation = pipeline(*texts).generation
    assert generation is not None
    return generation


def snapshot(*texts: str) -> MeshSnapshot:
    return generator(*texts).snapshot


def sidecar(namespace: str = "default", name: str = "client", **meta: object) -> Proxy:
    metadata: dict[str, object] = {
        "NAMESPACE": namespace,
        "INTERCEPTION_MODE": "NONE",
        "OUTBOUND_PORT": "15001",
        "LABELS": {"app": name},
    }
    metadata.update(meta)
    return parse_proxy(
        f"sidecar~127.0.0.1~{name}.{namespace}~{namespace}.svc.cluster.local", metadata
    )
