"""Test-only hooks (enabled by `--test-hooks`): provoke an Envoy NACK on purpose.

The poison cluster passes shoal's generation but breaks Envoy's proto constraints
(`connect_timeout` must be > 0), which is exactly the case `/debug/syncz` must surface.
"""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.cluster.v3 import cluster_pb2

from shoal.generate import CLUSTER, ProxyView, prepare
from shoal.generate.resourceset import ResourceSet

POISON_CLUSTER = "shoal-test-poison"


def _poison() -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(name=POISON_CLUSTER, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.FromSeconds(0)
    cluster.connect_timeout.nanos = -1
    return cluster


_POISON = prepare(POISON_CLUSTER, _poison())


def poison_view(view: ProxyView) -> ProxyView:
    clusters = ResourceSet.of([*view.of(CLUSTER).values(), _POISON])
    return ProxyView(
        version=view.version, resources=MappingProxyType({**view.resources, CLUSTER: clusters})
    )
