"""`LocalWorkload` (shoal.dev/v1alpha1): a service run as local processes by `shoal up`.

It declares both a service (name and ports, like a ServiceEntry without endpoints) and how to
run its replicas (command, env, labels, service account). Several LocalWorkloads may share one
service, e.g. `reviews-v1` and `reviews-v2`, as Kubernetes Deployments share a Service.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, field_error
from shoal.api.serviceentry import ServicePort


class LocalWorkloadSpec(ApiModel):
    """What to run and which service it serves."""

    service: str = ""
    ports: Annotated[list[ServicePort], Field(min_length=1)]
    labels: dict[str, str] = Field(default_factory=dict)
    service_account: str = ""
    replicas: Annotated[int, Field(ge=0, le=64, strict=True)] = 1
    command: Annotated[list[str], Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_ports(self) -> LocalWorkloadSpec:
        names = [p.name for p in self.ports]
        numbers = [p.number for p in self.ports]
        if len(set(names)) != len(names):
            raise field_error("ports", "port names must be unique")
        if len(set(numbers)) != len(numbers):
            raise field_error("ports", "port numbers must be unique")
        return self

    def service_name(self, metadata_name: str) -> str:
        return self.service or metadata_name
