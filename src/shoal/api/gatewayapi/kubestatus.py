"""Gateway API status in the shape the spec's CRDs hold it (what a Kubernetes writer sends
through `/status`): a route's `status.parents[]` (parentRef, controllerName, conditions) and a
Gateway's `status.conditions` and `status.listeners[]` (attachedRoutes, supportedKinds).

Pure: `observedGeneration` and the transition time are given; `lastTransitionTime` is kept
by the caller while a condition's status stays the same (as kube/status.py does for Istio's).
"""

from __future__ import annotations

from typing import Any

from shoal.api.gatewayapi import GROUP
from shoal.api.gatewayapi.attach import CONTROLLER, Condition, GatewayStatus, RouteStatus
from shoal.api.gatewayapi.gateway import GatewaySpec


def _condition(c: Condition, generation: int, now: str) -> dict[str, Any]:
    return {
        "type": c.type,
        "status": c.status,
        "reason": c.reason,
        "message": c.message,
        "observedGeneration": generation,
        "lastTransitionTime": now,
    }


def route_status_body(
    status: RouteStatus, route_namespace: str, generation: int, now: str
) -> dict[str, Any]:
    """`status` of an HTTPRoute/GRPCRoute: one entry per parentRef."""
    parents = []
    for parent in status.parents:
        ref = parent.ref
        written: dict[str, Any] = {
            "group": ref.group,
            "kind": ref.kind,
            "namespace": ref.namespace or route_namespace,
            "name": ref.name,
        }
        if ref.section_name is not None:
            written["sectionName"] = ref.section_name
        if ref.port is not None:
            written["port"] = ref.port
        parents.append(
            {
                "parentRef": written,
                "controllerName": CONTROLLER,
                "conditions": [_condition(c, generation, now) for c in parent.conditions],
            }
        )
    return {"parents": parents}


def gateway_status_body(
    status: GatewayStatus, spec: GatewaySpec, generation: int, now: str
) -> dict[str, Any]:
    """`status` of a Gateway: its conditions and, per listener, the routes attached."""
    listeners = [
        {
            "name": lst.name,
            "attachedRoutes": status.attached.get(lst.name, 0),
            "supportedKinds": [{"group": GROUP, "kind": k} for k in sorted(lst.route_kinds())],
            "conditions": [
                _condition(Condition("Accepted", "True", "Accepted"), generation, now),
                _condition(Condition("Programmed", "True", "Programmed"), generation, now),
            ],
        }
        for lst in spec.listeners
    ]
    return {
        "conditions": [_condition(c, generation, now) for c in status.conditions],
        "listeners": listeners if status.conditions[0].ok else [],
    }
