"""Property: for every other kind too, whatever shoal accepts from any input, Envoy accepts.

The sibling test (test_envoy_accepts_any_input.py) covers ServiceEntry, DestinationRule and
VirtualService. Here each example holds one document of every other kind shoal supports
(kinds_wild.py): AuthorizationPolicy, RequestAuthentication, PeerAuthentication, Telemetry,
Sidecar, LocalRateLimit, WorkloadEntry, Gateway with a VirtualService bound to it, MeshConfig,
LocalWorkload and LocalGateway, beside a small valid mesh. One kind, drawn per example, has
its fields go wild often, the others rarely. What shoal accepts is generated for both proxies
those kinds configure, a secure sidecar of the selected workload (inbound RBAC, JWT, rate
limit, mTLS, telemetry) and a secure ingress gateway (the Gateway's listeners, TLS with a real
certificate), and each goes through `envoy --mode validate` as one binary bootstrap.

Per kind, the run counts documents accepted and refused, so it cannot pass by refusing
everything or by drawing nothing wild.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings

from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator
from shoal.model import build_snapshot

from .envoyboot import bootstrap, gateway_router, secure_sidecar, validate
from .kinds_wild import CREDENTIALS, KINDS, documents

RATE, RARE = int(os.environ.get("SHOAL_WILD_RATE", "4")), 120

BASE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc0, namespace: default}
spec:
  hosts: [svc0.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc0, namespace: default}
spec:
  host: svc0.default.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: client, namespace: default}
spec:
  hosts: [client.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  workloadSelector: {labels: {app: client}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: otel, namespace: default}
spec:
  hosts: [otel.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 4317, name: grpc, protocol: GRPC}]
  endpoints: [{address: 10.0.0.9}]
"""


def test_envoy_accepts_whatever_shoal_accepts_of_every_other_kind() -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=int(os.environ.get("SHOAL_WILD_EXAMPLES", "40")),
        deadline=None,
        database=None,
        # no shrinking: each step would cost two Envoy runs; the failing mesh is printed whole
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(drawn=documents(RATE, RARE))
    def check(drawn: tuple[str, list[dict[str, Any]]]) -> None:
        target, docs = drawn
        text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
        result = ConfigStore().update({"base.yaml": BASE, "kinds.yaml": text})
        accepted = Counter(r.kind for r in result.resources if r.origin.file == "kinds.yaml")
        refused = Counter(kind for kind, _ in {(e.kind, e.name) for e in result.errors})
        seen.update({f"accepted {k}": v for k, v in accepted.items()})
        seen.update({f"refused {k}": v for k, v in refused.items()})
        seen[f"target {target}"] += 1
        snapshot = build_snapshot("wild.1", result.resources, credentials=CREDENTIALS)
        gen = ConfigGenerator(snapshot)
        for proxy in (secure_sidecar(), gateway_router()):
            with tempfile.TemporaryDirectory() as tmp:
                ok, output = validate(bootstrap(gen, proxy), Path(tmp))
            assert ok, f"{proxy.type}: {output}\n{text}\nshoal refused:\n" + "\n".join(
                map(str, result.errors)
            )

    check()
    print(sorted(seen.items()))
    # Not vacuous: every kind got through often, and wild fields of it were refused.
    for kind in KINDS:
        # a floor, not a quota: a kind drawn rarely in 40 examples still got through several times
        assert seen[f"accepted {kind}"] >= 3, seen
    # (over 40 examples most kinds, not always all, are drawn wild enough to be refused)
    assert sum(seen[f"refused {kind}"] > 0 for kind in KINDS) >= len(KINDS) - 4, seen
