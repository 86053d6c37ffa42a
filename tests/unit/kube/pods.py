"""Pod objects as the API server hands them to the injection webhook (tests' helpers)."""

from __future__ import annotations

from typing import Any


def deployment_pod(
    namespace: str = "shop",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A pod of Deployment reviews-v1 at CREATE: no name yet, generateName with the hash."""
    meta: dict[str, Any] = {
        "generateName": "reviews-v1-7d4b9c6f5-",
        "namespace": namespace,
        "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "7d4b9c6f5"}
        | (labels or {}),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x"}],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
    }
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "serviceAccountName": "bookinfo-reviews",
            "containers": [
                {
                    "name": "reviews",
                    "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.1",
                    "ports": [{"containerPort": 9080, "protocol": "TCP"}],
                    "env": [{"name": "LOG_DIR", "value": "/tmp/logs"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            **spec,
        },
    }
