"""Kubernetes objects in a config directory (file mode): a `Service` defines a mesh service as
Istio derives it, with the WorkloadEntries and instances its selector matches; Deployments,
ServiceAccounts and the like are notes, not errors; Istio kinds and fields shoal lacks are
refused as "not implemented yet", never as unknown."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from shoal.api import ConfigStore, parse_file
from shoal.cli.analyze import analyze
from shoal.model import Endpoint, build_snapshot
from shoal.model.build import RegistryInstance

SERVICE = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: httpbin}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: shop, labels: {app: httpbin}}
spec:
  ports:
  - {name: http, port: 8000, targetPort: 8080}
  - {name: grpc-api, port: 9000, targetPort: grpc}
  - {name: metrics, port: 9090, appProtocol: http}
  - {name: other, port: 7000}
  selector: {app: httpbin}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: httpbin}}
  template: {metadata: {labels: {app: httpbin}}, spec: {containers: [{name: h, image: x}]}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec: {address: 10.1.0.1, labels: {app: httpbin, version: v1}, ports: {grpc-api: 9443}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other-ns, namespace: default}
spec: {address: 10.1.0.2, labels: {app: httpbin}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: shop}
spec:
  hosts: [httpbin]
  http:
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""


def _store(text: str) -> tuple[list[object], list[str]]:
    result = ConfigStore().update({"all.yaml": text})
    return list(result.resources), [str(e) for e in result.errors]


def test_a_service_defines_the_mesh_service_its_selector_fills() -> None:
    resources, errors = _store(SERVICE)
    assert errors == []
    assert {r.kind for r in resources} >= {"Service", "Deployment", "ServiceAccount"}  # type: ignore[attr-defined]
    up = RegistryInstance(
        "anything.shop.svc.cluster.local",
        Endpoint("127.0.0.5", labels=MappingProxyType({"app": "httpbin"})),
        namespace="shop",
    )
    snapshot = build_snapshot("1", resources, [up])  # type: ignore[arg-type]
    svc = snapshot.services["httpbin.shop.svc.cluster.local"]
    assert [(p.number, p.name, p.protocol, p.target_port) for p in svc.ports] == [
        (8000, "http", "HTTP", 8080),
        (9000, "grpc-api", "GRPC", None),
        (9090, "metrics", "HTTP", None),
        (7000, "other", "TCP", None),  # no recognised name: TCP, as shoal never sniffs
    ]
    assert (svc.resolution, svc.location) == ("STATIC", "MESH_INTERNAL")
    # the WorkloadEntry of its namespace and the instance its selector matches; not the
    # WorkloadEntry of another namespace
    assert [e.address for e in svc.endpoints] == ["10.1.0.1", "127.0.0.5"]
    vm = svc.endpoints[0]
    assert vm.port_for(svc.ports[1]) == 9443 and vm.port_for(svc.ports[0]) == 8080


def test_a_virtual_service_for_a_host_only_a_service_defines_is_accepted() -> None:
    _, errors = _store(SERVICE)
    assert errors == []
    _, errors = _store(SERVICE.replace("host: httpbin, port: {number: 8000}", "host: nope"))
    assert any("is not defined by any ServiceEntry or Service" in e for e in errors)


def test_headless_and_external_name_services() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, ports: [{name: tcp-db, port: 5432}], selector: {app: db}}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.com., ports: [{name: https, port: 443}]}
"""
    resources, errors = _store(text)
    assert errors == []
    snapshot = build_snapshot("1", resources)  # type: ignore[arg-type]
    assert snapshot.services["db.default.svc.cluster.local"].resolution == "NONE"
    ext = snapshot.services["ext.default.svc.cluster.local"]
    assert (ext.resolution, ext.location, ext.endpoints[0].address) == (
        "DNS",
        "MESH_EXTERNAL",
        "example.com",
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
            "spec: {ports: [{port: 80}, {port: 81}]}\n",
            "spec.ports[0].name: a Service with several ports names each",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\n"
            "data: {tls.crt: '%%%'}\n",
            "data: 'tls.crt' is not base64",
        ),
    ],
)
def test_bad_kubernetes_objects_name_the_field(doc: str, message: str) -> None:
    _, errors = parse_file("k.yaml", doc)
    assert any(message in str(e) for e in errors), errors


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        (
            "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\n"
            "spec: {}\n",
            "kind",
            "EnvoyFilter is an Istio kind that shoal does not implement yet; shoal generates",
        ),
        (
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: f}\n",
            "kind",
            "WasmPlugin is an Istio kind that shoal does not implement yet; shoal loads no Wasm",
        ),
        (
            "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: f}\n",
            "kind",
            "set proxy options in shoal.dev/v1alpha1 MeshConfig",
        ),
        (
            "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: r}\n",
            "kind",
            "TLSRoute of gateway.networking.k8s.io is not implemented yet; shoal serves",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec:\n"
            "  outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: egress}}\n",
            "spec.outboundTrafficPolicy.egressProxy",
            "'egressProxy' is an Istio field that shoal does not implement yet",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
            "spec: {hosts: [a], exportTo: ['.']}\n",
            "spec.exportTo",
            "exportTo '.': limiting the namespaces that see a VirtualService or DestinationRule "
            "is not implemented yet",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
            "spec:\n  hosts: [a.example.com]\n  gateways: [mesh, egress]\n  tls:\n"
            "  - match: [{sniHosts: [a.example.com], gateways: [mesh]}]\n"
            "    route: [{destination: {host: a.example.com}}]\n",
            "spec.tls[0]",
            "tls routes for sidecars (gateway 'mesh') are not implemented yet",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\n"
            "spec: {address: 10.0.0.1, network: net-2}\n",
            "spec.network",
            "'network' is an Istio field that shoal does not implement yet",
        ),
    ],
)
def test_istio_kinds_and_fields_shoal_lacks_are_not_implemented(
    doc: str, field: str, says: str
) -> None:
    _, errors = parse_file("x.yaml", doc)
    assert [e.field for e in errors] == [field], errors
    assert says in errors[0].message


def test_analyze_reports_kubernetes_objects_as_notes(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(SERVICE)
    report = analyze(tmp_path)
    assert report.errors == ()
    notes = [(n.kind, n.message) for n in report.notes]
    assert ("Deployment", notes[1][1]) in notes
    assert all(m.startswith("not used by shoal in file mode") for _, m in notes)
    assert [k for k, _ in notes] == ["ServiceAccount", "Deployment"]
