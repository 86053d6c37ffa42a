"""Everything `shoal install` applies, as Kubernetes objects (plain dicts), in apply order.

CRDs first (the kinds must exist before anything names them), then the Namespace, identity
and rights (manifests_rbac.py), the CA Secret when one is given, the control plane's
Deployment and Service, and the webhook configurations last (they call the Service, so
registering them before it serves would refuse pod creation for nothing).

The same function writes the kustomize base in deploy/kustomize/ (`shoal install
--write-kustomize`), so both always hold the same objects.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from shoal.kube import names
from shoal.kube.manifests_crds import crds
from shoal.kube.manifests_rbac import (
    cluster_role,
    cluster_role_binding,
    role,
    role_binding,
    service_account,
)
from shoal.kube.manifests_webhooks import mutating_webhook, validating_webhook

CA_SECRET = "shoal-ca"  # the mesh CA's files, shared by every replica (Istio's `cacerts`)
CA_MOUNT = "/etc/shoal/ca"
_SELECTOR = MappingProxyType({"app": names.CONTROL_PLANE})
_LABELS = MappingProxyType({**_SELECTOR, "app.kubernetes.io/part-of": "shoal"})


@dataclass(frozen=True)
class InstallOptions:
    replicas: int = 2
    image: str = names.DEFAULT_IMAGE
    proxy_image: str = ""  # "" : the control plane's image
    revision: str = ""
    # the mesh's trusted roots (PEM): the webhook configurations' caBundle
    ca_bundle: str = ""
    # injection in every namespace not labelled otherwise (Istio's enableNamespacesByDefault)
    inject_all: bool = False


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": names.NAMESPACE, "labels": {"app.kubernetes.io/part-of": "shoal"}},
    }


def ca_secret(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The CA directory's files as the Secret the Deployment mounts as its `--ca-dir`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": CA_SECRET, "namespace": names.NAMESPACE, "labels": dict(_LABELS)},
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(files.items())},
    }


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def deployment(options: InstallOptions) -> dict[str, Any]:
    args = [
        "control-plane",
        "--kubernetes",
        "--host", "0.0.0.0",
        "--secure",
        "--ca-dir", CA_MOUNT,
        "--xds-port", str(names.XDS_TLS_PORT),
        "--admin-port", str(names.ADMIN_PORT),
        "--webhook-port", str(names.WEBHOOK_PORT),
        "--proxy-image", options.proxy_image or options.image,
    ]  # fmt: skip
    if options.revision:
        args += ["--revision", options.revision]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.CONTROL_PLANE,
            "namespace": names.NAMESPACE,
            "labels": dict(_LABELS),
        },
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": dict(_SELECTOR)},
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {
                    "labels": dict(_LABELS),
                    # the control plane itself never gets a sidecar
                    "annotations": {"sidecar.istio.io/inject": "false"},
                },
                "spec": {
                    "serviceAccountName": names.CONTROL_PLANE,
                    "securityContext": {"fsGroup": 1337},
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": dict(_SELECTOR)},
                                        "topologyKey": "kubernetes.io/hostname",
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [
                        {
                            "name": "control-plane",
                            "image": options.image,
                            "command": ["shoal"],
                            "args": args,
                            "env": [
                                _field_env("POD_NAME", "metadata.name"),
                                _field_env("POD_NAMESPACE", "metadata.namespace"),
                            ],
                            "ports": [
                                {"name": "https-xds", "containerPort": names.XDS_TLS_PORT},
                                {"name": "http-monitoring", "containerPort": names.ADMIN_PORT},
                                {"name": "https-webhook", "containerPort": names.WEBHOOK_PORT},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": names.ADMIN_PORT},
                                "periodSeconds": 3,
                                "timeoutSeconds": 5,
                            },
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                            "securityContext": {
                                "runAsUser": 1337,
                                "runAsGroup": 1337,
                                "runAsNonRoot": True,
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "ca", "mountPath": CA_MOUNT, "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "ca", "secret": {"secretName": CA_SECRET, "defaultMode": 0o440}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    def port(name: str, number: int, target: int | None = None) -> dict[str, Any]:
        return {"name": name, "port": number, "targetPort": target or number, "protocol": "TCP"}

    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.CONTROL_PLANE,
            "namespace": names.NAMESPACE,
            "labels": dict(_LABELS),
        },
        "spec": {
            "selector": dict(_SELECTOR),
            "ports": [
                # xDS and the CA, TLS with tokens (Istio's 15012; shoal serves one xDS port,
                # TLS in a cluster, so the plaintext 15010 is not exposed)
                port("https-xds", names.XDS_TLS_PORT),
                port("https-webhook", 443, names.WEBHOOK_PORT),
                port("https-webhook-direct", names.WEBHOOK_PORT),
                port("http-monitoring", names.ADMIN_PORT),
            ],
        },
    }


def manifests(
    options: InstallOptions | None = None, *, ca_files: Mapping[str, bytes] | None = None
) -> list[dict[str, Any]]:
    """Every object, in apply order (see the module docstring)."""
    o = options or InstallOptions()
    out: list[dict[str, Any]] = [
        *crds(),
        namespace(),
        service_account(),
        cluster_role(),
        cluster_role_binding(),
        role(),
        role_binding(),
    ]
    if ca_files:
        out.append(ca_secret(ca_files))
    out += [
        deployment(o),
        service(),
        mutating_webhook(o.revision, o.ca_bundle, inject_all=o.inject_all),
        validating_webhook(o.revision, o.ca_bundle),
    ]
    return out


def render(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML, the form `kubectl apply -f -` reads."""
    return "".join(
        "---\n" + yaml.safe_dump(dict(o), sort_keys=False, default_flow_style=False)
        for o in objects
    )
