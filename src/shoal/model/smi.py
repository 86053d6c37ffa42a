"""SMI onto the Istio model: each TrafficSplit becomes the VirtualService it stands for.

A TrafficSplit for root service `S` in namespace `N` with backends `B1..Bn` is served as a
VirtualService for host `S.N.svc.cluster.local` whose one HTTP route sends each backend's
share (its weight as a percentage of the total, rounded to add up to 100) to
`Bi.N.svc.cluster.local`. Its name, `NAME.smi`, is one no hand-written VirtualService has;
a hand-written VirtualService for the same host is merged with it as two VirtualServices
for one host are.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.api import Resource
from shoal.api.meta import ObjectMeta
from shoal.api.smi.trafficsplit import TrafficSplitSpec
from shoal.api.virtualservice import VirtualServiceSpec

_ISTIO_NET = "networking.istio.io/v1"
_LOCAL = "svc.cluster.local"


def translate(resources: Sequence[Resource]) -> list[Resource]:
    """The VirtualServices the TrafficSplits among `resources` stand for."""
    out = []
    for res in resources:
        if not isinstance(res.spec, TrafficSplitSpec):
            continue
        ns = res.meta.namespace
        route = [
            {"destination": {"host": f"{name}.{ns}.{_LOCAL}"}, "weight": percent}
            for name, percent in res.spec.percentages()
        ]
        spec = VirtualServiceSpec.model_validate(
            {"hosts": [f"{res.spec.service}.{ns}.{_LOCAL}"], "http": [{"route": route}]}
        )
        meta = ObjectMeta(name=f"{res.meta.name}.smi", namespace=ns)
        out.append(Resource(_ISTIO_NET, "VirtualService", meta, spec, res.origin))
    return out
