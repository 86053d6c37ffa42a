"""Pure generation tests for issue 5's Envoy side: automatic mTLS, PeerAuthentication,
AuthorizationPolicy, RequestAuthentication and DestinationRule `tls`; and Envoy
(`--mode validate`) accepts a secure sidecar's whole config."""

from __future__ import annotations

import subprocess
from pathlib import Path

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator
from shoal.generate.prepared import CLUSTER, ENDPOINT, LISTENER, ROUTE, unpack
from shoal.model import build_snapshot

from .meshcfg import sidecar

ENVOY = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "envoy"

SE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - address: 10.0.0.1
    labels: {app: reviews, security.istio.io/tlsMode: istio}
    serviceAccount: reviews
  - {address: 10.0.0.2, labels: {app: reviews}}
"""


def _pa(mode: str, ns: str = "default", selector: str = "", ports: str = "") -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: pa-{mode.lower()}-{ns}{"-w" if selector else ""}, namespace: {ns}}}
spec:
  {selector}
  mtls: {{mode: {mode}}}
  {ports}
"""


AUTHZ = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-pp, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage], notNamespaces: [evil]}}]
    to: [{operation: {methods: [GET], paths: ["/items*", "*.png"], notPorts: ["9999"]}}]
    when: [{key: "request.auth.claims[group]", values: [admins]},
           {key: "request.headers[x-env]", notValues: [prod]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-secret, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: [/secret]}}]
    from: [{source: {requestPrincipals: ["*"], ipBlocks: [10.1.0.0/16]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  jwtRules:
  - issuer: issuer.example
    audiences: [reviews]
    jwks: '{"keys": []}'
    fromHeaders: [{name: x-jwt, prefix: "Bearer "}]
    outputClaimToHeaders: [{header: x-group, claim: group}]
  - {issuer: other.example, jwksUri: "https://example.com/jwks.json"}
"""


def _gen(*texts: str, files: dict[str, str] | None = None) -> ConfigGenerator:
    result = ConfigStore().update({f"f{i}.yaml": t for i, t in enumerate(texts)})
    assert not result.errors, [str(e) for e in result.errors]
    return ConfigGenerator(build_snapshot("t.1", result.resources, files=files))


def _secure(name: str = "reviews", **meta: object) -> object:
    base: dict[str, object] = {"SECURE": "true", "INBOUND_PORT": "15006", "APP_PORT": "8080"}
    return sidecar(name=name, **{**base, "SERVICE_ACCOUNT": name, **meta})


def _inbound(gen: ConfigGenerator, proxy: object) -> listener_pb2.Listener:
    view = gen.view(proxy)  # type: ignore[arg-type]
    out = unpack(view.of(LISTENER)["inbound_http"], listener_pb2.Listener())
    assert isinstance(out, listener_pb2.Listener)
    return out


def _hcm(chain: object) -> hcm_pb2.HttpConnectionManager:
    hcm = hcm_pb2.HttpConnectionManager()
    chain.filters[0].typed_config.Unpack(hcm)  # type: ignore[attr-defined]
    return hcm


def _chains(listener: listener_pb2.Listener) -> list[str]:
    return [c.filter_chain_match.transport_protocol or "any" for c in listener.filter_chains]


def test_peer_authentication_modes_choose_the_inbound_chains() -> None:
    assert _chains(_inbound(_gen(SE), _secure())) == ["tls", "raw_buffer"]  # default PERMISSIVE
    assert _chains(_inbound(_gen(SE, _pa("STRICT", "istio-system")), _secure())) == ["tls"]
    # namespace beats mesh, workload beats namespace, UNSET inherits
    gen = _gen(SE, _pa("STRICT", "istio-system"), _pa("DISABLE"))
    assert _chains(_inbound(gen, _secure())) == ["any"]
    workload = _pa("UNSET", selector="selector: {matchLabels: {app: reviews}}",
                   ports="portLevelMtls: {8080: {mode: PERMISSIVE}}")  # fmt: skip
    gen = _gen(SE, _pa("STRICT", "istio-system"), workload)
    assert _chains(_inbound(gen, _secure())) == ["tls", "raw_buffer"]  # port level
    assert _chains(_inbound(gen, _secure(APP_PORT="8081"))) == ["tls"]  # inherits mesh STRICT
    # a proxy without SDS cannot do mTLS: one plaintext chain whatever the policy
    plain = sidecar(name="reviews", INBOUND_PORT="15006", APP_PORT="8080")
    assert _chains(_inbound(_gen(SE, _pa("STRICT", "istio-system")), plain)) == ["any"]


def test_inbound_tls_requires_a_mesh_client_cert_and_passes_its_uri() -> None:
    listener = _inbound(_gen(SE), _secure())
    assert listener.listener_filters[0].name == "envoy.filters.listener.tls_inspector"
    ctx = tls_pb2.DownstreamTlsContext()
    listener.filter_chains[0].transport_socket.typed_config.Unpack(ctx)
    assert ctx.require_client_certificate.value
    common = ctx.common_tls_context
    assert common.tls_certificate_sds_secret_configs[0].name == "default"
    sds = common.tls_certificate_sds_secret_configs[0].sds_config.api_config_source
    assert sds.grpc_services[0].envoy_grpc.cluster_name == "sds-grpc"
    assert common.combined_validation_context.validation_context_sds_secret_config.name == "ROOTCA"
    hcm = _hcm(listener.filter_chains[0])
    assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.SANITIZE_SET
    assert hcm.set_current_client_cert_details.uri


def test_automatic_mtls_only_for_istio_endpoints_and_secure_proxies() -> None:
    gen = _gen(SE)
    name = "outbound|80||reviews.default.svc.cluster.local"
    secure = unpack(gen.view(_secure("pp")).of(CLUSTER)[name], cluster_pb2.Cluster())
    matches = {m.name: m for m in secure.transport_socket_matches}
    assert set(matches) == {"tlsMode-istio", "tlsMode-disabled"}
    assert dict(matches["tlsMode-istio"].match) == {"tlsMode": "istio"}
    ctx = tls_pb2.UpstreamTlsContext()
    matches["tlsMode-istio"].transport_socket.typed_config.Unpack(ctx)
    assert list(ctx.common_tls_context.alpn_protocols) == ["istio"]
    sans = ctx.common_tls_context.combined_validation_context.default_validation_context
    assert [m.matcher.exact for m in sans.match_typed_subject_alt_names] == [
        "spiffe://cluster.local/ns/default/sa/reviews"
    ]
    plain = unpack(gen.view(sidecar()).of(CLUSTER)[name], cluster_pb2.Cluster())
    assert not plain.transport_socket_matches and not plain.HasField("transport_socket")
    cla = unpack(gen.endpoints()[name], endpoint_pb2.ClusterLoadAssignment())
    metas = [dict(e.metadata.filter_metadata["envoy.transport_socket_match"])
             for e in cla.endpoints[0].lb_endpoints]  # fmt: skip
    assert metas == [{"tlsMode": "istio"}, {}]


def _dr(tls: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec: {{host: reviews, trafficPolicy: {{tls: {tls}}}}}
"""


def test_destination_rule_tls_modes() -> None:
    name = "outbound|80||reviews.default.svc.cluster.local"

    def cluster(
        tls: str, proxy: object, files: dict[str, str] | None = None
    ) -> cluster_pb2.Cluster:
        gen = _gen(SE, _dr(tls), files=files)
        out = unpack(gen.view(proxy).of(CLUSTER)[name], cluster_pb2.Cluster())  # type: ignore[arg-type]
        assert isinstance(out, cluster_pb2.Cluster)
        return out

    assert not cluster("{mode: DISABLE}", _secure("pp")).transport_socket_matches
    mutual = cluster("{mode: ISTIO_MUTUAL, sni: x.example}", _secure("pp"))
    ctx = tls_pb2.UpstreamTlsContext()
    mutual.transport_socket.typed_config.Unpack(ctx)
    assert ctx.sni == "x.example" and not mutual.transport_socket_matches
    files = {"c.pem": "CERT", "k.pem": "KEY", "/ca.pem": "CA"}
    tls = (
        "{mode: MUTUAL, clientCertificate: c.pem, privateKey: k.pem, caCertificates: /ca.pem,"
        " subjectAltNames: [reviews.example]}"
    )
    m = cluster(tls, sidecar(), files)
    m.transport_socket.typed_config.Unpack(ctx)
    cert = ctx.common_tls_context.tls_certificates[0]
    assert (cert.certificate_chain.inline_string, cert.private_key.inline_string) == ("CERT", "KEY")
    validation = ctx.common_tls_context.validation_context
    assert validation.trusted_ca.inline_string == "CA"
    assert validation.match_typed_subject_alt_names[0].matcher.exact == "reviews.example"
    # a file not read (yet): plaintext rather than a config Envoy rejects
    assert not cluster(tls, sidecar(), {}).HasField("transport_socket")
    simple = cluster("{mode: SIMPLE, insecureSkipVerify: true}", sidecar())
    simple.transport_socket.typed_config.Unpack(ctx)
    assert not ctx.common_tls_context.HasField("validation_context")


def _filters(gen: ConfigGenerator) -> list[hcm_pb2.HttpFilter]:
    return list(_hcm(_inbound(gen, _secure()).filter_chains[0]).http_filters)


def test_rbac_and_jwt_filters_in_istios_order() -> None:
    filters = _filters(_gen(SE, AUTHZ))
    assert [f.name for f in filters] == [
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.rbac",
        "envoy.filters.http.rbac",
        "shoal.peer_identity",  # generate/telemetry_peer.py
        "envoy.filters.http.router",
    ]
    deny, allow = rbac_filter.RBAC(), rbac_filter.RBAC()
    filters[1].typed_config.Unpack(deny)
    filters[2].typed_config.Unpack(allow)
    assert deny.rules.action == rbac_pb2.RBAC.DENY
    assert list(deny.rules.policies) == ["ns[istio-system]-policy[deny-secret]-rule[0]"]
    assert allow.rules.action == rbac_pb2.RBAC.ALLOW
    text = str(allow.rules.policies["ns[default]-policy[allow-pp]-rule[0]"])
    needles = [
        'exact: "spiffe://cluster.local/ns/default/sa/productpage"',
        'prefix: "/items"',
        'suffix: ".png"',
        'regex: ".*/ns/evil/.*"',
        'key: "group"',
        "destination_port: 9999",
        'name: ":method"',
        "not_id",
        "not_rule",
    ]
    for needle in needles:
        assert needle in text, needle
    jwt = jwt_pb2.JwtAuthentication()
    filters[0].typed_config.Unpack(jwt)
    p0, p1 = jwt.providers["origins-0"], jwt.providers["origins-1"]
    assert (p0.issuer, list(p0.audiences), p0.payload_in_metadata) == (
        "issuer.example",
        ["reviews"],
        "payload",
    )
    assert p0.from_headers[0].value_prefix == "Bearer "
    assert p0.claim_to_headers[0].header_name == "x-group"
    assert "shoal-unresolvable" in p1.local_jwks.inline_string  # http jwksUri: Istio's fallback
    any_of = jwt.rules[0].requires.requires_any.requirements
    assert [r.provider_name for r in any_of][:2] == ["origins-0", "origins-1"]
    assert any_of[2].HasField("allow_missing")


def test_empty_allow_denies_all_empty_deny_denies_nothing() -> None:
    empty = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nothing, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-none, namespace: default}
spec: {action: DENY}
"""
    filters = _filters(_gen(SE, empty))
    assert [f.name for f in filters] == [
        "envoy.filters.http.rbac",
        "shoal.peer_identity",  # generate/telemetry_peer.py
        "envoy.filters.http.router",
    ]
    allow = rbac_filter.RBAC()
    filters[0].typed_config.Unpack(allow)
    assert allow.rules.action == rbac_pb2.RBAC.ALLOW and not allow.rules.policies
    # policies of other namespaces or other workloads do not apply
    other = empty.replace("namespace: default", "namespace: shop")
    assert [f.name for f in _filters(_gen(SE, other))] == [
        "shoal.peer_identity",
        "envoy.filters.http.router",
    ]


def test_file_jwks_comes_from_the_snapshot() -> None:
    ra = """
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec: {jwtRules: [{issuer: a, jwksUri: "file:jwks.json"}]}
"""
    gen = _gen(SE, ra, files={"file:jwks.json": '{"keys": ["from-file"]}'})
    jwt = jwt_pb2.JwtAuthentication()
    _filters(gen)[0].typed_config.Unpack(jwt)
    assert "from-file" in jwt.providers["origins-0"].local_jwks.inline_string


def test_envoy_accepts_a_secure_sidecars_config(tmp_path: Path) -> None:
    jwks = '{"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "k"}]}'
    gen = _gen(SE, AUTHZ.replace('{"keys": []}', jwks), _dr_subset(), _pa("STRICT"))
    view = gen.view(_secure())  # type: ignore[arg-type]
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id, boot.node.cluster = (
        "sidecar~127.0.0.1~reviews.default~default.svc.cluster.local",
        "r",
    )
    for name in ("xds-grpc", "sds-grpc"):
        c = boot.static_resources.clusters.add(name=name, type=cluster_pb2.Cluster.STATIC)
        c.connect_timeout.FromSeconds(1)
        c.typed_extension_protocol_options[
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        ].CopyFrom(_h2())
    for res in view.of(CLUSTER).values():
        c = unpack(res, cluster_pb2.Cluster())
        if c.type == cluster_pb2.Cluster.EDS:  # static copies carry their endpoints inline
            c.type = cluster_pb2.Cluster.STATIC
            c.ClearField("eds_cluster_config")
            c.load_assignment.CopyFrom(
                unpack(view.of(ENDPOINT)[c.name], endpoint_pb2.ClusterLoadAssignment())
            )
        boot.static_resources.clusters.append(c)
    assert view.of(ROUTE)
    for res in view.of(LISTENER).values():
        listener = unpack(res, listener_pb2.Listener())
        if listener.name == "inbound_http":
            boot.static_resources.listeners.append(listener)
    # binary, not JSON: the python protos lack fields Envoy 1.40 has (stats_scope, telemetry)
    path = tmp_path / "boot.pb"
    path.write_bytes(boot.SerializeToString())
    proc = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "-l", "error",
                           "--disable-hot-restart"], capture_output=True, text=True, check=False,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _h2() -> object:
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
    from google.protobuf import any_pb2

    opts = hpo.HttpProtocolOptions()
    opts.explicit_http_config.http2_protocol_options.SetInParent()
    out = any_pb2.Any()
    out.Pack(opts)
    return out


def _dr_subset() -> str:
    return """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {app: reviews}
    trafficPolicy: {tls: {mode: SIMPLE, sni: reviews.example, subjectAltNames: [spiffe://x/y]}}
"""


def test_tls_origination_from_a_credential_and_not_before_it_exists() -> None:
    import pytest

    from shoal.api.clienttls import ClientTLSSettings
    from shoal.generate.mtls import origination
    from shoal.model import Credential

    tls = ClientTLSSettings.model_validate({"mode": "MUTUAL", "credentialName": "c"})
    assert origination(tls, {}, "x.example", {}) is None  # left plaintext until it exists
    found = origination(tls, {}, "x.example", {"c": Credential("c", "CERT", "KEY", "CA")})
    assert found is not None
    common = found.common_tls_context
    assert common.tls_certificates[0].certificate_chain.inline_string == "CERT"
    assert common.tls_certificates[0].private_key.inline_string == "KEY"
    assert common.validation_context.trusted_ca.inline_string == "CA"
    assert found.sni == "x.example"
    # with credentialName, the file fields are refused
    with pytest.raises(ValueError, match="exclude each other"):
        ClientTLSSettings.model_validate(
            {"mode": "MUTUAL", "credentialName": "c", "clientCertificate": "/a.pem"}
        )
