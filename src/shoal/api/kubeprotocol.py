"""Istio's reading of a Kubernetes Service: its host name and each port's protocol.

Shared by the Kubernetes source (kube/translate.py) and file mode, where `v1 Service` objects
in a config directory define mesh services (model/build.py), so both derive the same names.

Protocol selection is Istio's (`kube.ConvertProtocol`): UDP ports are UDP; else `appProtocol`
if set (with Kubernetes' standard `kubernetes.io/h2c`, `kubernetes.io/ws`, `kubernetes.io/wss`),
else the port name; `grpc-web...` is GRPC-WEB, otherwise the part before the first `-` names
the protocol (`http-web` is HTTP, `tcp` is TCP), case-insensitively. Where Istio would fall
back to protocol sniffing (no recognised name), shoal, which does not sniff, uses TCP: a TCP
proxy carries any protocol, it only loses HTTP routing for that port.
"""

from __future__ import annotations

from types import MappingProxyType

from shoal.api.hosts import CLUSTER_DOMAIN

# Istio's protocol names (protocol.Parse), as shoal's model spells them
_NAMED = MappingProxyType(
    {
        "tcp": "TCP",
        "udp": "UDP",
        "grpc": "GRPC",
        "grpc-web": "GRPC-WEB",
        "http": "HTTP",
        "http_proxy": "HTTP",
        "http2": "HTTP2",
        "https": "HTTPS",
        "tls": "TLS",
        "mongo": "MONGO",
        "redis": "REDIS",
        "mysql": "MYSQL",
    }
)
# appProtocol values Kubernetes itself defines (core/v1 ServicePort.appProtocol)
_KUBERNETES_APP_PROTOCOLS = MappingProxyType(
    {"kubernetes.io/h2c": "HTTP2", "kubernetes.io/ws": "HTTP", "kubernetes.io/wss": "HTTPS"}
)
# Istio's fallback when sniffing is not applied; shoal never sniffs, so TCP is the default
UNRECOGNISED_PROTOCOL = "TCP"


def port_protocol(name: str, kube_protocol: str = "TCP", app_protocol: str | None = None) -> str:
    """The mesh protocol of a Service port, by Istio's rules (see the module docstring)."""
    if kube_protocol.upper() == "UDP":
        return "UDP"
    label = name
    if app_protocol is not None:
        known = _KUBERNETES_APP_PROTOCOLS.get(app_protocol)
        if known is not None:
            return known
        label = app_protocol
    if label[:8].lower() == "grpc-web":
        return "GRPC-WEB"
    prefix = label.split("-", 1)[0].lower()
    return _NAMED.get(prefix, UNRECOGNISED_PROTOCOL)


def service_hostname(name: str, namespace: str, domain: str = CLUSTER_DOMAIN) -> str:
    """Kubernetes' DNS name of a Service: `name.namespace.svc.cluster.local`."""
    return f"{name}.{namespace}.svc.{domain}"


# Istio reads a Service's visibility (`exportTo`) from this annotation, comma-separated
EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
