"""Traffic mirroring (VirtualService `mirror` + `mirrorPercentage`, or `mirrors`).

Each mirror becomes a `request_mirror_policies` entry: Envoy sends a copy of the request
(with `-shadow` appended to the Host) and never waits for, nor forwards, the mirror's
answer, so a slow or failing mirror does not reach the caller. Percentages follow Istio's
MirrorPercent: absent means 100 %, an explicit 0 means no mirroring; traces are not sampled
for mirrored requests.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.v3 import percent_pb2

from shoal.api.routepolicies import Percent
from shoal.api.virtualservice import Destination, HTTPRoute
from shoal.generate.destinations import destination_cluster
from shoal.generate.faults import fractional
from shoal.model import MeshSnapshot, Port


def _policy(cluster: str, percent: float) -> rc.RouteAction.RequestMirrorPolicy:
    policy = rc.RouteAction.RequestMirrorPolicy(cluster=cluster)
    if percent >= 100.0:
        policy.runtime_fraction.default_value.CopyFrom(percent_pb2.FractionalPercent(numerator=100))
    else:
        policy.runtime_fraction.default_value.CopyFrom(fractional(percent))
    policy.trace_sampled.value = False
    return policy


def _percent(p: Percent | None, legacy: int | None = None) -> float:
    if p is not None:
        return p.value
    if legacy is not None:
        return float(legacy)
    return 100.0


def mirror_policies(
    snapshot: MeshSnapshot, http: HTTPRoute, namespace: str, port: Port
) -> list[rc.RouteAction.RequestMirrorPolicy]:
    wanted: list[tuple[Destination, float]] = []
    if http.mirror is not None:
        wanted.append((http.mirror, _percent(http.mirror_percentage, http.mirror_percent)))
    wanted += [(m.destination, _percent(m.percentage)) for m in http.mirrors]
    return [
        _policy(destination_cluster(snapshot, dest, namespace, port), percent)
        for dest, percent in wanted
        if percent > 0
    ]
