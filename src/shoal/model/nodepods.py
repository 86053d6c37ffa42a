"""The pods a node proxy serves, from its node metadata `NODE_PODS`.

A node proxy (node id type `node`) is one Envoy for every pod of a host. Its agent lists the
pods in node metadata `NODE_PODS`: a list (or a JSON string of one) of maps with `name`,
`namespace`, `ip`, `netns` (the path of the pod's network namespace, e.g.
`/var/run/netns/POD`), `service_account`, `labels`, and the loopback sidecar's ports
`outbound_port`, `inbound_port`, `app_port` (and optionally `service_host`). Each becomes a
`NodePod`: the pod as a loopback (`INTERCEPTION_MODE NONE`) sidecar `Proxy` plus its netns,
so generation can reuse the sidecar's policies per pod (generate/nodeproxy.py).

Nothing here is trusted for identity: the CA issues a node only the identities its node
token names (ca/nodetokens.py), whatever the metadata claims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from shoal.model.proxy import Proxy, ProxyError, parse_proxy


@dataclass(frozen=True)
class NodePod:
    """One pod served by a node proxy: its sidecar-shaped `Proxy` and its network namespace."""

    proxy: Proxy
    netns: str

    @property
    def key(self) -> str:
        """A name unique on the node, the prefix of the pod's listeners, routes, clusters."""
        return f"{self.proxy.workload_name}.{self.proxy.namespace}"


def _text(raw: Mapping[str, object], key: str, where: str) -> str:
    value = raw.get(key)
    if value is None or str(value) == "":
        raise ProxyError(f"{where}: field {key!r} is required")
    return str(value)


def _pod(raw: object, index: int, secure: bool) -> NodePod:
    where = f"node metadata NODE_PODS[{index}]"
    if not isinstance(raw, Mapping):
        raise ProxyError(f"{where} must be a map, got {type(raw).__name__}")
    name = _text(raw, "name", where)
    namespace = _text(raw, "namespace", where)
    ip = _text(raw, "ip", where)
    netns = _text(raw, "netns", where)
    if not netns.startswith("/"):
        raise ProxyError(f"{where}: netns {netns!r} must be an absolute path")
    metadata: dict[str, object] = {
        "NAMESPACE": namespace,
        "SERVICE_ACCOUNT": raw.get("service_account") or "default",
        "LABELS": raw.get("labels") or {},
        "INSTANCE_IPS": ip,
        "WORKLOAD_NAME": name,
        "INTERCEPTION_MODE": "NONE",
        "OUTBOUND_PORT": raw.get("outbound_port"),
        "INBOUND_PORT": raw.get("inbound_port"),
        "APP_PORT": raw.get("app_port"),
        "SERVICE_HOST": raw.get("service_host") or "",
        "SECURE": "true" if secure else "",
    }
    try:
        node_id = f"sidecar~{ip}~{name}.{namespace}~{namespace}.svc.cluster.local"
        proxy = parse_proxy(node_id, metadata)
    except ProxyError as err:
        raise ProxyError(f"{where}: {err}") from None
    return NodePod(proxy=proxy, netns=netns)


def node_pods(metadata: Mapping[str, object]) -> tuple[NodePod, ...]:
    """The pods of `NODE_PODS` (none if absent), in the order given; names must be unique."""
    raw = metadata.get("NODE_PODS")
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            raise ProxyError(f"node metadata NODE_PODS is not JSON: {err}") from None
    if not isinstance(raw, list | tuple):
        raise ProxyError(f"node metadata NODE_PODS must be a list, got {type(raw).__name__}")
    secure = str(metadata.get("SECURE") or "").lower() == "true"
    pods = tuple(_pod(item, i, secure) for i, item in enumerate(raw))
    seen: set[str] = set()
    for pod in pods:
        if pod.key in seen:
            raise ProxyError(f"node metadata NODE_PODS names pod {pod.key} twice")
        seen.add(pod.key)
    return pods
