"""shoal.generate: pure functions from a mesh snapshot and a proxy to Envoy resources."""

from shoal.generate.prepared import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    SHORT_NAMES,
    PreparedResource,
    prepare,
)
from shoal.generate.proxyconfig import ConfigGenerator, ProxyView, ResourceMap

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "PUSH_ORDER",
    "ROUTE",
    "SECRET",
    "SHORT_NAMES",
    "ConfigGenerator",
    "PreparedResource",
    "ProxyView",
    "ResourceMap",
    "prepare",
]
