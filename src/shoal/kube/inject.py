"""Sidecar injection: a pod as created, in; the same pod with a shoal agent, out.

Pure: `inject_pod` returns the mutated pod, `injection_patch` the RFC 6902 JSON Patch from
the one to the other (what the admission webhook answers, webhook.py). What is added, as
Istio adds it:

- the `istio-proxy` container running `shoal agent` (the command `shoal up` starts), told its
  pod name, namespace, service account and IP through the downward API (`$(POD_NAME)` ...
  expanded by the kubelet), where the control plane is, and where its token and the mesh's
  root certificate are; readiness on the agent's `/healthz/ready` (15021);
- labels `security.istio.io/tlsMode: istio` and `service.istio.io/canonical-name` /
  `-revision`; annotations `sidecar.istio.io/status` (what was injected, as JSON),
  `istio.io/rev`, `kubectl.kubernetes.io/default-container`, `sidecar.istio.io/interceptionMode`;
- volumes: `istio-envoy` (memory, the agent's working files), `istio-podinfo` (downward API),
  `istio-token` (a projected service-account token bound to the mesh's audience) and
  `istiod-ca-cert` (the root certificate from ConfigMap `istio-ca-root-cert`).

Interception: shoal's agent does not install capture rules in pods, so sidecars run in
Istio's interception mode NONE: the agent's inbound listener takes the pod's service traffic
on the inbound port (the pod is annotated with it, so EndpointSlice translation points
callers there) and forwards it to the application's port; applications reach other services
through the agent's outbound port, which the injector sets as their `HTTP_PROXY`.

Start order: an application that calls out before its agent listens gets connection errors
(with HTTP_PROXY nothing reaches the mesh without the agent), so by default the app is held
until the agent is ready, as Istio's `holdApplicationUntilProxyStarts` does: `istio-proxy` is
the first container and its postStart hook, `shoal agent-wait` (run as `python -m
shoal.cli.agentwait`), returns once the agent's `/healthz/ready` answers (Envoy has its
listeners, clusters and certificate). The kubelet starts a pod's containers in order and
does not start the next one until the previous one's postStart hook has returned. A pod opts
out with `proxy.istio.io/config: {holdApplicationUntilProxyStarts: false}`; the agent then
comes last, as Istio places it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal.kube import names
from shoal.kube.inject_overrides import Overrides, overrides
from shoal.kube.inject_rules import InjectionPolicy
from shoal.kube.objects import KubeObject, annotations_of, items, labels_of, mapping, text
from shoal.kube.patchdiff import diff

PROXY_CONTAINER = "istio-proxy"
STATUS_ANNOTATION = "sidecar.istio.io/status"
INTERCEPTION_ANNOTATION = "sidecar.istio.io/interceptionMode"
IMAGE_ANNOTATION = "sidecar.istio.io/proxyImage"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
REVISION_ANNOTATION = "istio.io/rev"
# shoal's: where the sidecar takes service traffic, and which app port it forwards to
INBOUND_PORT_ANNOTATION = "shoal.dev/inbound-port"
APP_PORT_ANNOTATION = "shoal.dev/app-port"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
CANONICAL_NAME_LABEL = "service.istio.io/canonical-name"
CANONICAL_REVISION_LABEL = "service.istio.io/canonical-revision"

TOKEN_DIR = "/var/run/secrets/tokens"
TOKEN_FILE = f"{TOKEN_DIR}/istio-token"
ROOT_CERT_DIR = "/var/run/secrets/istio"
ROOT_CERT_FILE = f"{ROOT_CERT_DIR}/root-cert.pem"
PROXY_DIR = "/etc/istio/proxy"
PODINFO_DIR = "/etc/istio/pod"
VOLUMES = ("istio-envoy", "istio-podinfo", "istio-token", "istiod-ca-cert")
PROXY_UID = 1337


@dataclass(frozen=True)
class InjectorSettings:
    """What the injector puts into pods; `shoal control-plane` flags set these."""

    image: str = names.DEFAULT_IMAGE
    xds_address: str = f"{names.SERVICE_DNS}:{names.XDS_TLS_PORT}"
    revision: str = ""  # "" is the default revision
    token_audience: str = names.TOKEN_AUDIENCE
    token_expiration_s: int = 43200
    outbound_port: int = 15001
    inbound_port: int = 15006
    admin_port: int = 15000
    health_port: int = 15021
    hold_application: bool = True  # Istio's holdApplicationUntilProxyStarts
    hold_timeout_s: int = 60  # how long the postStart hook waits for the agent
    policy: InjectionPolicy = field(default_factory=InjectionPolicy)


@dataclass(frozen=True)
class Injection:
    """The outcome for one pod: the mutated pod, and warnings for the user (kubectl prints
    admission warnings)."""

    pod: dict[str, Any]
    warnings: tuple[str, ...] = ()


def workload_name(pod: KubeObject) -> str:
    """The pod's workload (Deployment) name: `generateName` without the ReplicaSet's hash,
    as Istio derives it, else the pod's name."""
    meta = mapping(pod, "metadata")
    base = text(meta, "generateName").rstrip("-") or text(meta, "name")
    pod_hash = labels_of(pod).get("pod-template-hash", "")
    if pod_hash and base.endswith(f"-{pod_hash}"):
        base = base[: -len(pod_hash) - 1]
    return base


def canonical_labels(pod: KubeObject) -> dict[str, str]:
    """Istio's canonical service name and revision for a pod (kept if already set)."""
    labels = labels_of(pod)
    name = (
        labels.get(CANONICAL_NAME_LABEL)
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or workload_name(pod)
    )
    revision = (
        labels.get(CANONICAL_REVISION_LABEL)
        or labels.get("app.kubernetes.io/version")
        or labels.get("version")
        or "latest"
    )
    return {CANONICAL_NAME_LABEL: name, CANONICAL_REVISION_LABEL: revision}


def app_port(pod: KubeObject) -> int | None:
    """The port the sidecar forwards inbound traffic to: annotation `shoal.dev/app-port`,
    else the first TCP containerPort of the first application container."""
    raw = annotations_of(pod).get(APP_PORT_ANNOTATION, "")
    if raw.isdigit() and 0 < int(raw) < 65536:
        return int(raw)
    for container in items(pod, "spec", "containers"):
        if text(container, "name") == PROXY_CONTAINER:
            continue
        for port in items(container, "ports"):
            number = port.get("containerPort") if isinstance(port, dict) else None
            if isinstance(number, int) and text(port, "protocol", default="TCP") == "TCP":
                return number
    return None


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _agent_args(
    pod: KubeObject,
    labels: Mapping[str, str],
    s: InjectorSettings,
    port: int | None,
    extra: Overrides,
) -> list[str]:
    label_arg = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    health = s.health_port if extra.health_port is None else extra.health_port
    args = [
        "agent",
        "--name", "$(POD_NAME)",
        "--namespace", "$(POD_NAMESPACE)",
        "--workload", workload_name(pod),
        "--labels", label_arg,
        "--service-account", "$(SERVICE_ACCOUNT)",
        "--ip", "$(INSTANCE_IP)",
        "--xds-address", s.xds_address,
        "--outbound-port", str(s.outbound_port),
        "--inbound-port", str(s.inbound_port),
        "--admin-port", str(s.admin_port),
        "--health-port", str(health),
        "--health-host", "0.0.0.0",
        "--token-file", TOKEN_FILE,
        "--ca-root", ROOT_CERT_FILE,
    ]  # fmt: skip
    if port is not None:
        args += ["--app-port", str(port)]
    return [*args, *extra.agent_args]


def wait_command(s: InjectorSettings, health: int) -> list[str]:
    """The postStart hook that holds the pod's next containers until the agent is ready
    (`shoal agent-wait`, run as a module: it starts far faster than the whole command)."""
    return [
        "python", "-m", "shoal.cli.agentwait",
        "--url", f"http://127.0.0.1:{health}/healthz/ready",
        "--timeout", str(s.hold_timeout_s),
    ]  # fmt: skip


def proxy_container(
    pod: KubeObject,
    labels: Mapping[str, str],
    s: InjectorSettings,
    port: int | None,
    extra: Overrides | None = None,
    *,
    hold: bool = False,
) -> dict[str, Any]:
    """The `istio-proxy` container: `shoal agent` for this pod; with `hold`, a postStart hook
    that returns once the agent is ready (see the module docstring)."""
    extra = extra or Overrides()
    image = annotations_of(pod).get(IMAGE_ANNOTATION) or s.image
    health = s.health_port if extra.health_port is None else extra.health_port
    container: dict[str, Any] = {
        "name": PROXY_CONTAINER,
        "image": image,
        "command": ["shoal"],
        "args": _agent_args(pod, labels, s, port, extra),
        "env": [
            _field_env("POD_NAME", "metadata.name"),
            _field_env("POD_NAMESPACE", "metadata.namespace"),
            _field_env("INSTANCE_IP", "status.podIP"),
            _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
            {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload_name(pod)},
            {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "NONE"},
            # the agent's temporary files (bootstrap, SDS socket) on the memory volume:
            # the root filesystem is read-only
            {"name": "TMPDIR", "value": PROXY_DIR},
        ],
        "resources": {k: dict(v) for k, v in extra.resources.items()},
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "istio-envoy", "mountPath": PROXY_DIR},
            {"name": "istio-podinfo", "mountPath": PODINFO_DIR},
            {"name": "istio-token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "istiod-ca-cert", "mountPath": ROOT_CERT_DIR, "readOnly": True},
        ],
    }
    if health:
        container["ports"] = [{"name": "http-health", "containerPort": health, "protocol": "TCP"}]
        container["readinessProbe"] = {
            "httpGet": {"path": "/healthz/ready", "port": health},
            "initialDelaySeconds": 1,
            "periodSeconds": 2,
            "timeoutSeconds": 3,
            "failureThreshold": 30,
        }
        if hold:
            container["lifecycle"] = {"postStart": {"exec": {"command": wait_command(s, health)}}}
    return container


def proxy_volumes(s: InjectorSettings) -> list[dict[str, Any]]:
    return [
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {
            "name": "istio-podinfo",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                ]
            },
        },
        {
            "name": "istio-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": s.token_audience,
                            "expirationSeconds": s.token_expiration_s,
                            "path": "istio-token",
                        }
                    }
                ]
            },
        },
        {"name": "istiod-ca-cert", "configMap": {"name": names.ROOT_CERT_CONFIGMAP}},
    ]


def is_injected(pod: KubeObject) -> bool:
    return any(text(c, "name") == PROXY_CONTAINER for c in items(pod, "spec", "containers"))


def _proxy_env(s: InjectorSettings) -> list[dict[str, str]]:
    url = f"http://127.0.0.1:{s.outbound_port}"
    # the pod's own loopback stays direct (a container calling another one of its pod)
    local = "localhost,127.0.0.1,::1"
    return [
        {"name": "HTTP_PROXY", "value": url},
        {"name": "http_proxy", "value": url},
        {"name": "NO_PROXY", "value": local},
        {"name": "no_proxy", "value": local},
    ]


def inject_pod(pod: KubeObject, settings: InjectorSettings | None = None) -> Injection:
    """The pod with its sidecar (see the module docstring); a pod that has one is returned
    unchanged. Call only for pods `injection_required` accepts."""
    s = settings or InjectorSettings()
    out: dict[str, Any] = copy.deepcopy(dict(pod))
    out.setdefault("metadata", {}).pop("managedFields", None)
    if is_injected(out):
        return Injection(out)
    meta = out["metadata"]
    spec = out.setdefault("spec", {})
    annotations = meta.setdefault("annotations", {}) or {}
    meta["annotations"] = annotations
    extra = overrides(annotations)
    warnings = list(extra.warnings)
    mode = annotations.get(INTERCEPTION_ANNOTATION, "NONE")
    if mode != "NONE":
        warnings.append(
            f"{INTERCEPTION_ANNOTATION}={mode} is not supported by shoal's agent (it installs "
            "no capture rules); the sidecar runs in interception mode NONE"
        )
    labels = meta.setdefault("labels", {}) or {}
    meta["labels"] = labels
    labels.update(canonical_labels(out))
    labels[TLS_MODE_LABEL] = "istio"
    # the API server's ServiceAccount admission sets this before webhooks run; the agent's
    # identity ($(SERVICE_ACCOUNT) from spec.serviceAccountName) must never come out empty
    spec.setdefault("serviceAccountName", text(spec, "serviceAccount") or "default")
    port = app_port(out)
    containers = spec.setdefault("containers", [])
    app_names = [text(c, "name") for c in containers]
    for container in containers:
        env = container.setdefault("env", [])
        taken = {text(e, "name") for e in env}
        env.extend(e for e in _proxy_env(s) if e["name"] not in taken)
    hold = s.hold_application if extra.hold_application is None else extra.hold_application
    health = s.health_port if extra.health_port is None else extra.health_port
    if hold and not health:
        hold = False
        warnings.append(
            "holdApplicationUntilProxyStarts needs the agent's health port "
            "(status.sidecar.istio.io/port is 0); the application is not held"
        )
    proxy = proxy_container(out, labels, s, port, extra, hold=hold)
    if hold:
        containers.insert(0, proxy)
    else:
        containers.append(proxy)
    volumes = spec.setdefault("volumes", [])
    taken_volumes = {text(v, "name") for v in volumes}
    volumes.extend(v for v in proxy_volumes(s) if v["name"] not in taken_volumes)
    revision = s.revision or "default"
    annotations[INTERCEPTION_ANNOTATION] = "NONE"
    annotations[INBOUND_PORT_ANNOTATION] = str(s.inbound_port)
    annotations[REVISION_ANNOTATION] = revision
    if app_names:
        annotations.setdefault(DEFAULT_CONTAINER_ANNOTATION, app_names[0])
    annotations[STATUS_ANNOTATION] = json.dumps(
        {
            "initContainers": None,
            "containers": [PROXY_CONTAINER],
            "volumes": list(VOLUMES),
            "imagePullSecrets": None,
            "revision": revision,
        },
        separators=(",", ":"),
    )
    return Injection(out, tuple(warnings))


@dataclass(frozen=True)
class InjectionPatch:
    """An RFC 6902 JSON Patch (a list of operations) and the injection's warnings."""

    operations: list[dict[str, Any]]
    warnings: tuple[str, ...] = ()


def injection_patch(pod: KubeObject, settings: InjectorSettings | None = None) -> InjectionPatch:
    """`inject_pod`, answered as the JSON Patch from `pod` (without its `managedFields`,
    as Istio diffs it) to the injected pod."""
    before: dict[str, Any] = copy.deepcopy(dict(pod))
    before.setdefault("metadata", {}).pop("managedFields", None)
    result = inject_pod(before, settings)
    return InjectionPatch(diff(before, result.pod), result.warnings)
