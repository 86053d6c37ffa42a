"""shoal.model: the immutable mesh snapshot and the proxies that ask for config."""

from shoal.model.build import RegistryInstance, build_snapshot
from shoal.model.proxy import Proxy, ProxyError, parse_proxy
from shoal.model.push import PushRequest, push_request
from shoal.model.snapshot import Credential, Endpoint, MeshSnapshot, Port, Service

__all__ = [
    "Credential",
    "Endpoint",
    "MeshSnapshot",
    "Port",
    "Proxy",
    "ProxyError",
    "PushRequest",
    "RegistryInstance",
    "Service",
    "build_snapshot",
    "parse_proxy",
    "push_request",
]
