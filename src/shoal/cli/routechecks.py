"""`shoal analyze` warnings about routing that is valid but will not do what was meant.

* A DestinationRule subset whose labels match no workload of its service: a route to it
  answers 503 (no healthy upstream). Workloads are ServiceEntry endpoints, WorkloadEntries
  and LocalWorkloads; services with none known here (e.g. Kubernetes) are not judged.
* A route whose `timeout` is shorter than `retries.perTryTimeout` x `retries.attempts`: the
  route gives up before the retries it asks for can run.

(A route to a subset no DestinationRule defines is an error, reported by validation.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shoal.api import ConfigError, Resource, fqdn
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.duration import format_duration
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.model import build_snapshot


def _workload_labels(resources: Sequence[Resource]) -> dict[str, list[Mapping[str, str]]]:
    """Host -> label sets of the workloads known to serve it."""
    snapshot = build_snapshot("analyze", resources)
    out: dict[str, list[Mapping[str, str]]] = {
        host: [e.labels for e in svc.endpoints]
        for host, svc in snapshot.services.items()
        if svc.endpoints
    }
    for r in resources:
        if isinstance(r.spec, LocalWorkloadSpec):
            host = snapshot.resolve(r.spec.service_name(r.meta.name), r.meta.namespace)
            out.setdefault(host, []).append(r.spec.labels)
    return out


def subsets_without_workloads(resources: Sequence[Resource]) -> list[ConfigError]:
    workloads = _workload_labels(resources)
    namespaces = {r.meta.namespace for r in resources}
    found = []
    for r in resources:
        if not isinstance(r.spec, DestinationRuleSpec):
            continue
        host = fqdn(r.spec.host, r.meta.namespace, namespaces=namespaces)
        labels = workloads.get(host)
        if not labels:
            continue
        for i, subset in enumerate(r.spec.subsets):
            if not any(all(w.get(k) == v for k, v in subset.labels.items()) for w in labels):
                want = ", ".join(f"{k}={v}" for k, v in sorted(subset.labels.items()))
                found.append(
                    r.error(
                        ("spec", "subsets", i, "labels"),
                        f"subset {subset.name!r} ({want}) matches no workload of {host}: "
                        "requests routed to it will get 503",
                    )
                )
    return found


def timeouts_shorter_than_retries(resources: Sequence[Resource]) -> list[ConfigError]:
    found = []
    for r in resources:
        if not isinstance(r.spec, VirtualServiceSpec):
            continue
        for i, http in enumerate(r.spec.http):
            retries = http.retries
            if not (http.timeout and retries and retries.per_try_timeout and retries.attempts):
                continue
            needed = retries.per_try_timeout * retries.attempts
            if http.timeout < needed:
                found.append(
                    r.error(
                        ("spec", "http", i, "timeout"),
                        f"timeout {format_duration(http.timeout)} is shorter than "
                        f"perTryTimeout x attempts ({format_duration(retries.per_try_timeout)}"
                        f" x {retries.attempts} = {format_duration(needed)}): the route gives "
                        "up before its retries can run",
                    )
                )
    return found
