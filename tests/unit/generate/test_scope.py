"""Sidecar egress hosts and exportTo decide which services a proxy gets config for; a change a
proxy cannot see is not pushed to it."""

from __future__ import annotations

from shoal.api import ConfigStore
from shoal.generate import CLUSTER, ENDPOINT, ROUTE, ConfigGenerator
from shoal.xds.messages import Request
from shoal.xds.stream import StreamProtocol

from .meshcfg import Steps, sidecar, snapshot


def service(name: str, ns: str, export: str = "") -> str:
    export_to = f"\n  exportTo: [{export!r}]" if export else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{name}.{ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC{export_to}
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 10.0.0.1, labels: {{version: v1}}}}]
"""


def own_namespace_only(ns: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: {ns}}}
spec:
  egress: [{{hosts: ["./*", "shared/*"]}}]
"""


def vs(name: str, ns: str, timeout: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{name}.{ns}.svc.cluster.local]
  http: [{{timeout: {timeout}, route: [{{destination: {{host: {name}.{ns}.svc.cluster.local}}}}]}}]
"""


BASE = [
    service("a1", "a"),
    service("b1", "b"),
    service("common", "shared"),
    service("secret", "b", export="."),
    own_namespace_only("a"),
    own_namespace_only("b"),
]


def hosts(gen: ConfigGenerator, ns: str) -> set[str]:
    return {n.split("|")[3] for n in gen.view(sidecar(ns)).of(CLUSTER) if n.startswith("outbound|")}


def test_egress_hosts_and_export_to_scope_clusters_endpoints_and_routes() -> None:
    gen = ConfigGenerator(snapshot(*BASE))
    assert hosts(gen, "a") == {"a1.a.svc.cluster.local", "common.shared.svc.cluster.local"}
    assert hosts(gen, "b") == {
        "b1.b.svc.cluster.local",
        "common.shared.svc.cluster.local",
        "secret.b.svc.cluster.local",
    }
    # no Sidecar in "shared": everything exported to it, but not b's namespace-private service
    assert "secret.b.svc.cluster.local" not in hosts(gen, "shared")
    eds = gen.view(sidecar("a")).of(ENDPOINT)
    assert all("|b1.b." not in n for n in eds)
    routes = gen.view(sidecar("a")).of(ROUTE)["outbound_http"]
    assert not any("b1.b" in r for r in routes.refs)


def connect(gen: ConfigGenerator, ns: str) -> StreamProtocol:
    """A stream synced to `gen` (requests and ACKs as Envoy sends them)."""
    p = StreamProtocol(delta=False, boot_id="b", missing=lambda t, n: None)
    p.on_view(gen.view(sidecar(ns)))
    pending = p.on_request(Request(type_url=CLUSTER))
    pending += p.on_request(
        Request(type_url="type.googleapis.com/envoy.config.listener.v3.Listener")
    )
    eds_names = tuple(n for n, r in gen.view(sidecar(ns)).of(CLUSTER).items() if r.uses_eds)
    pending += p.on_request(Request(type_url=ENDPOINT, names=eds_names))
    pending += p.on_request(Request(type_url=ROUTE, names=("outbound_http",)))
    while pending:
        r = pending.pop(0)
        names = (
            eds_names
            if r.type_url == ENDPOINT
            else ("outbound_http",)
            if r.type_url == ROUTE
            else ()
        )
        pending += p.on_request(
            Request(type_url=r.type_url, nonce=r.nonce, version=r.version, names=names)
        )
    return p


def test_a_change_in_one_namespace_is_pushed_only_to_proxies_that_see_it() -> None:
    steps = Steps()
    first = steps(*BASE, vs("a1", "a", "1s"))
    in_a, in_b = connect(first, "a"), connect(first, "b")
    second = steps(*BASE, vs("a1", "a", "2s"))
    assert [r.type_url for r in in_a.on_view(second.view(sidecar("a")))] == [ROUTE]
    assert in_b.on_view(second.view(sidecar("b"))) == []


def test_an_endpoint_change_elsewhere_keeps_the_view_object_of_a_scoped_proxy() -> None:
    # The ADS server skips a stream whose view is the very object it already has, so an
    # endpoint change in namespace b must leave a's narrowed maps and view as they were.
    steps = Steps()
    first = steps(*BASE)
    a_before, b_before = first.view(sidecar("a")), first.view(sidecar("b"))
    moved = [t.replace("10.0.0.1", "10.0.0.2") if "name: b1" in t else t for t in BASE]
    second = steps(*moved)
    assert second.view(sidecar("a")) is a_before
    b_after = second.view(sidecar("b"))
    assert b_after is not b_before
    assert b_after.of(CLUSTER) is b_before.of(CLUSTER)
    assert b_after.of(ENDPOINT) is not b_before.of(ENDPOINT)
    changed = "outbound|80||b1.b.svc.cluster.local"
    assert b_after.of(ENDPOINT)[changed].version != b_before.of(ENDPOINT)[changed].version
    # a third snapshot with the change undone is new content again for b, not a's business
    third = steps(*BASE)
    assert third.view(sidecar("a")) is a_before
    assert third.view(sidecar("b")).of(ENDPOINT).digest() == b_before.of(ENDPOINT).digest()


def mesh_export(*targets: str) -> str:
    return f"""
apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {{name: mesh, namespace: istio-system}}
spec:
  defaultServiceExportTo: [{", ".join(repr(t) for t in targets)}]
"""


def test_mesh_default_export_scopes_services_that_set_no_export_to() -> None:
    services = [
        service("a1", "a"),
        service("b1", "b"),
        service("everywhere", "b", export="*"),
    ]
    unscoped = ConfigGenerator(snapshot(*services))
    assert hosts(unscoped, "a") == {
        "a1.a.svc.cluster.local",
        "b1.b.svc.cluster.local",
        "everywhere.b.svc.cluster.local",
    }
    scoped = ConfigGenerator(snapshot(*services, mesh_export(".")))
    # own namespace only, unless the ServiceEntry itself says otherwise
    assert hosts(scoped, "a") == {"a1.a.svc.cluster.local", "everywhere.b.svc.cluster.local"}
    assert hosts(scoped, "b") == {
        "b1.b.svc.cluster.local",
        "everywhere.b.svc.cluster.local",
    }
    routes = scoped.view(sidecar("a")).of(ROUTE)["outbound_http"]
    assert {n for n in routes.refs if n.startswith("outbound|")} == {
        "outbound|80||a1.a.svc.cluster.local",
        "outbound|80||everywhere.b.svc.cluster.local",
    }
    # named namespaces
    to_a = ConfigGenerator(snapshot(*services, mesh_export("a")))
    assert "b1.b.svc.cluster.local" in hosts(to_a, "a")
    assert "b1.b.svc.cluster.local" not in hosts(to_a, "b")


def test_a_bad_default_export_is_refused_with_its_field() -> None:
    result = ConfigStore().update({"mesh.yaml": mesh_export("Not_A_Namespace")})
    (error,) = result.errors
    assert (error.file, error.line) == ("mesh.yaml", 6)  # the text starts with a newline
    assert error.field.startswith("spec.defaultServiceExportTo")
    assert "namespace name" in error.message


def test_a_sidecar_in_the_root_namespace_scopes_namespaces_without_their_own() -> None:
    gen = ConfigGenerator(
        snapshot(service("a1", "a"), service("b1", "b"), own_namespace_only("istio-system"))
    )
    assert hosts(gen, "a") == {"a1.a.svc.cluster.local"}
    assert hosts(gen, "b") == {"b1.b.svc.cluster.local"}
