"""`metadata` of a resource: the Kubernetes ObjectMeta fields shoal reads or tolerates."""

from __future__ import annotations

from pydantic import Field

from shoal.api.base import ApiModel, DnsLabel, DnsSubdomain, Int


class ObjectMeta(ApiModel):
    """Name, namespace, labels and annotations; server-set fields are accepted and kept.

    `resourceVersion`, `uid`, `generation` and `creationTimestamp` appear when a user
    pastes `kubectl get -o yaml` output, so they are allowed rather than reported.
    """

    name: DnsSubdomain
    namespace: DnsLabel = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resource_version: str = ""
    uid: str = ""
    generation: Int | None = None
    creation_timestamp: str | None = None
