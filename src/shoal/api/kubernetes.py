"""Kubernetes objects found in a config directory beside Istio YAML (file mode).

Istio's samples keep a `Service`, its `Deployment` and `ServiceAccount` in the same file as
the VirtualService that routes to them. In file mode shoal reads them as follows:

* `v1 Service` defines a mesh service as Istio derives it (`name.ns.svc.cluster.local`,
  ports by name or `appProtocol`); its endpoints are the WorkloadEntries and local
  workloads its `selector` matches (model/build.py).
* `v1 Secret` of type `kubernetes.io/tls` serves a Gateway's `credentialName`, like the
  `secrets/NAME/` files do.
* The other kinds that travel with Istio YAML (workloads, accounts, RBAC, ConfigMaps, other
  Secrets) are read, checked only for their envelope, and reported as notes: "not used by
  shoal in file mode". They are not errors: the file is what a user applies to Kubernetes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, Port, field_error, shoal_model_config


class KubeObjectSpec(ApiModel):
    """Any Kubernetes object shoal does not use in file mode: every field is kept, none read."""

    model_config = shoal_model_config(extra="allow")


class KubeServicePort(ApiModel):
    """A port of a Kubernetes Service (core/v1 ServicePort)."""

    port: Port
    name: str = ""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = None
    target_port: Annotated[int, Field(ge=1, le=65535)] | str | None = None
    # kube-proxy's: says nothing about how the mesh routes
    node_port: object = None


class KubeServiceSpec(ApiModel):
    """The spec of a Kubernetes Service, as far as the mesh needs it (core/v1 ServiceSpec).

    Kubernetes' own fields that only kube-proxy or a cloud load balancer read
    (`sessionAffinity`, `externalTrafficPolicy`, `loadBalancerIP`, ...) are accepted and
    left alone: they say nothing about how the mesh routes. Any other field is a typo."""

    ports: list[KubeServicePort] = Field(default_factory=list)
    selector: dict[str, str] | None = None
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    cluster_ip: str = Field("", alias="clusterIP")
    cluster_ips: list[str] = Field(default_factory=list, alias="clusterIPs")
    external_name: str = ""
    # read by kube-proxy or a cloud load balancer, not by the mesh
    external_ips: object = Field(None, alias="externalIPs")
    session_affinity: object = None
    session_affinity_config: object = None
    load_balancer_ip: object = Field(None, alias="loadBalancerIP")
    load_balancer_source_ranges: object = None
    load_balancer_class: object = None
    allocate_load_balancer_node_ports: object = None
    external_traffic_policy: object = None
    internal_traffic_policy: object = None
    health_check_node_port: object = None
    publish_not_ready_addresses: object = None
    ip_families: object = None
    ip_family_policy: object = None
    traffic_distribution: object = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names: dict[str, int] = {}
        for i, port in enumerate(self.ports):
            if len(self.ports) > 1 and not port.name:
                raise field_error(f"ports.{i}.name", "a Service with several ports names each")
            if port.name in names:
                raise field_error(
                    f"ports.{i}.name",
                    f"port name {port.name!r} is already used by ports[{names[port.name]}]",
                )
            names[port.name] = i
        if self.type == "ExternalName" and not self.external_name:
            raise field_error("externalName", "an ExternalName Service needs 'externalName'")
        return self


class KubeSecretSpec(ApiModel):
    """A Secret's top-level fields (`type`, `data`, `stringData`); TLS ones are checked."""

    model_config = shoal_model_config(extra="allow")

    type: str = "Opaque"
    data: dict[str, str] = Field(default_factory=dict)
    string_data: dict[str, str] = Field(default_factory=dict)
    immutable: bool | None = None

    def value(self, key: str) -> str | None:
        """The text of entry `key` (`stringData` wins over `data`, as in Kubernetes)."""
        if key in self.string_data:
            return self.string_data[key]
        raw = self.data.get(key)
        if raw is None:
            return None
        return base64.b64decode(raw, validate=True).decode("utf-8")

    @model_validator(mode="after")
    def _tls_complete(self) -> Self:
        for key, raw in self.data.items():
            try:
                base64.b64decode(raw, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                # (a key like tls.crt holds a dot: the message names it, not the path)
                raise field_error(
                    "data", f"{key!r} is not base64 of UTF-8 text (PEM, for a TLS Secret)"
                ) from None
        if self.is_tls:
            for key in ("tls.crt", "tls.key"):
                text = self.value(key)
                if not text:
                    raise field_error(
                        "data", f"a kubernetes.io/tls Secret needs {key!r} (in data or stringData)"
                    )
                if "-----BEGIN " not in text:
                    raise field_error("data", f"{key!r} is not PEM (no '-----BEGIN ' line)")
        return self

    @property
    def is_tls(self) -> bool:
        return self.type == "kubernetes.io/tls"


# kinds read for their envelope only (apiVersion group, kind): the note analyze prints says
# what to write instead, where shoal has it
_WORKLOADS = "file mode runs no workloads: declare them as LocalWorkload or WorkloadEntry"
_RBAC = "shoal's own identities come from workload service accounts; RBAC is Kubernetes'"
PASSIVE_KINDS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("apps", "Deployment"): _WORKLOADS,
        ("apps", "StatefulSet"): _WORKLOADS,
        ("apps", "DaemonSet"): _WORKLOADS,
        ("apps", "ReplicaSet"): _WORKLOADS,
        ("", "Pod"): _WORKLOADS,
        ("batch", "Job"): _WORKLOADS,
        ("", "ServiceAccount"): "a LocalWorkload's or WorkloadEntry's serviceAccount names it",
        ("", "ConfigMap"): "config maps are for Kubernetes workloads",
        ("", "Namespace"): "namespaces exist as soon as a resource names them",
        ("rbac.authorization.k8s.io", "Role"): _RBAC,
        ("rbac.authorization.k8s.io", "RoleBinding"): _RBAC,
        ("rbac.authorization.k8s.io", "ClusterRole"): _RBAC,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _RBAC,
        ("autoscaling", "HorizontalPodAutoscaler"): _WORKLOADS,
        ("policy", "PodDisruptionBudget"): _WORKLOADS,
    }
)
SECRET_NOTE = "only Secrets of type kubernetes.io/tls are used (a Gateway's credentialName)"
