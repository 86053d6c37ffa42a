"""`shoal analyze` warnings for classic routing mistakes (cli/routechecks.py)."""

from __future__ import annotations

from shoal.api import ConfigStore, Resource
from shoal.cli.checks import find_warnings

SE = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def _vs(extra: str) -> str:
    return f"""---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - route: [{{destination: {{host: reviews, subset: v1}}}}]
{extra}"""


def _resources(text: str) -> list[Resource]:
    result = ConfigStore().update({"mesh.yaml": text})
    assert not result.errors, [str(e) for e in result.errors]
    return list(result.resources)


def test_subset_matching_no_workload_is_reported_at_its_labels() -> None:
    (warning,) = find_warnings(_resources(SE))
    assert warning.field == "spec.subsets[1].labels"
    assert warning.line == 18
    assert "subset 'v2' (version=v2) matches no workload" in warning.message


def test_local_workloads_count_as_workloads() -> None:
    lw = """---
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: reviews-v2, namespace: default}
spec:
  service: reviews
  ports: [{number: 80, name: http, protocol: HTTP}]
  labels: {version: v2}
  command: [python, -m, shoal.samples.service]
"""
    # the ServiceEntry and the LocalWorkload both define the host; keep the LocalWorkload only
    text = SE.split("---\n", 1)[1] + lw
    (warning,) = find_warnings(_resources(text))
    assert "subset 'v1'" in warning.message  # v2 is served by the LocalWorkload


def test_timeout_shorter_than_per_try_timeout_times_attempts() -> None:
    text = SE.replace("  - {name: v2, labels: {version: v2}}\n", "") + _vs(
        "    timeout: 1s\n    retries: {attempts: 3, perTryTimeout: 0.5s}\n"
    )
    (warning,) = find_warnings(_resources(text))
    assert warning.field == "spec.http[0].timeout"
    assert "0.5s x 3 = 1.5s" in warning.message
    ok = SE.replace("  - {name: v2, labels: {version: v2}}\n", "") + _vs(
        "    timeout: 2s\n    retries: {attempts: 3, perTryTimeout: 0.5s}\n"
    )
    assert find_warnings(_resources(ok)) == []
