"""Istio's names for a workload from its labels: app, version, canonical service and revision,
and the service name its traces carry.

Shared by the generator (metric labels, the OpenTelemetry tracer's service name) and the agent
(the node's cluster, which Envoy's Zipkin tracer reports as the service), so both name a
workload the same way without the agent loading the generator.
"""

from __future__ import annotations

from collections.abc import Mapping

_CANONICAL_NAME = "service.istio.io/canonical-name"
_CANONICAL_REVISION = "service.istio.io/canonical-revision"


def app_of(labels: Mapping[str, str]) -> str:
    return labels.get("app") or labels.get("app.kubernetes.io/name") or ""


def version_of(labels: Mapping[str, str]) -> str:
    return labels.get("version") or labels.get("app.kubernetes.io/version") or ""


def canonical_service(labels: Mapping[str, str], workload: str) -> str:
    """Istio's canonical service: its label, else the app name, else the workload's name."""
    return labels.get(_CANONICAL_NAME) or app_of(labels) or workload


def canonical_revision(labels: Mapping[str, str]) -> str:
    """Istio's canonical revision: its label, else the version ('' means `latest`)."""
    return labels.get(_CANONICAL_REVISION) or version_of(labels)


def tracing_service(labels: Mapping[str, str], workload: str, namespace: str) -> str:
    """Istio's default trace service name (`tracingServiceName: APP_LABEL_AND_NAMESPACE`)."""
    return f"{canonical_service(labels, workload)}.{namespace}"
