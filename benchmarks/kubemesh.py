"""meshgen's synthetic mesh as the Kubernetes objects a cluster would hold for it.

`kube_objects(S, E, K, V)` gives, for the same S services x E endpoints over K namespaces that
`meshgen.generate_mesh` writes as ServiceEntries, what the API server of a cluster running them
holds: per service a ``Service`` (port 80 named ``http``, targetPort 8080), E ``Pod``s (labels
``app`` and ``version: v1``/``v2`` alternately, the same IPs as meshgen's endpoints) and one
``EndpointSlice`` naming them; and the very DestinationRules, VirtualServices (and with
``sidecar_scope`` the Sidecars) meshgen writes, as custom objects. The service hosts
(``svc-i.<ns>.svc.cluster.local``) are the same, so both meshes give the proxies the same
clusters, routes and endpoints, and a change to one behaves as the same change to the other.
"""

from __future__ import annotations

from typing import Any

import yaml

from meshgen import (
    ENDPOINT_PORT,
    SERVICE_PORT,
    ServiceSpec,
    destination_rule,
    endpoint_address,
    namespaces,
    services,
    sidecar_egress,
    virtual_service,
)

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def slice_name(svc: ServiceSpec) -> str:
    """The name of the service's one EndpointSlice (the controller's `<service>-<suffix>`)."""
    return f"{svc.name}-abcde"


def slice_ports(port: int = ENDPOINT_PORT) -> list[Obj]:
    return [{"name": "http", "port": port, "protocol": "TCP"}]


def _service(svc: ServiceSpec) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc.name, "namespace": svc.namespace, "labels": {"app": svc.name}},
        "spec": {
            "selector": {"app": svc.name},
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": ENDPOINT_PORT,
                 "protocol": "TCP"}
            ],
        },
    }  # fmt: skip


def _pod(svc: ServiceSpec, j: int) -> Obj:
    ip = endpoint_address(svc.index, j)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{svc.name}-{j}",
            "namespace": svc.namespace,
            "labels": {"app": svc.name, "version": f"v{1 + j % 2}"},
        },
        "spec": {
            "serviceAccountName": "default",
            "nodeName": f"node-{j % 4}",
            "containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _slice(svc: ServiceSpec, e: int) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(svc),
            "namespace": svc.namespace,
            "labels": {SERVICE_NAME_LABEL: svc.name},
        },
        "addressType": "IPv4",
        "ports": slice_ports(),
        "endpoints": [
            {
                "addresses": [endpoint_address(svc.index, j)],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": f"node-{j % 4}",
                "targetRef": {"kind": "Pod", "namespace": svc.namespace, "name": f"{svc.name}-{j}"},
            }
            for j in range(e)
        ],
    }


def kube_objects(
    s: int, e: int = 10, k: int = 1, v: float = 0.5, *, sidecar_scope: bool = False
) -> list[Obj]:
    """Every object of the mesh, namespaces first, pods before the slices naming them."""
    out: list[Obj] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in namespaces(k)
        if ns != "default"
    ]
    for svc in services(s, k, v):
        out.append(_service(svc))
        out += [_pod(svc, j) for j in range(e)]
        out.append(_slice(svc, e))
        out.append(yaml.safe_load(destination_rule(svc)))
        if svc.has_vs:
            out.append(yaml.safe_load(virtual_service(svc)))
    if sidecar_scope:
        out += [yaml.safe_load(sidecar_egress(ns)) for ns in namespaces(k)]
    return out
