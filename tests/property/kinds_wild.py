"""Whole-type strategies for the kinds besides ServiceEntry/DestinationRule/VirtualService.

Security (AuthorizationPolicy, RequestAuthentication, PeerAuthentication), edge (Gateway with
its bound VirtualService), scoping (Sidecar), Telemetry, WorkloadEntry and the shoal.dev kinds
(LocalRateLimit, MeshConfig, LocalWorkload, LocalGateway): each field drawn through `Wild`, so
it is a plausible value, or now and then any string, number, duration or value of another
type. Selectors usually pick the test's workloads (`app: client` behind a sidecar, `istio:
ingressgateway` for the gateway), so what is accepted reaches the generated config.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from shoal.api.authorizationpolicy import CONDITION_KEYS
from shoal.model.snapshot import Credential

from .test_envoy_accepts_any_input import Wild, http_route
from .wild import maybe, some

CLIENT = {"app": "client"}
GATEWAY = {"istio": "ingressgateway"}
CREDENTIAL = "shop-cert"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwks() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    numbers = key.public_numbers()
    jwk = {"kty": "RSA", "kid": "k1", "alg": "RS256", "n": _b64(numbers.n), "e": _b64(numbers.e)}
    return json.dumps({"keys": [jwk]})


def _credential() -> Credential:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return Credential(
        CREDENTIAL,
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


JWKS = _jwks()
CREDENTIALS = {CREDENTIAL: _credential()}


def _doc(kind: str, name: str, spec: dict[str, Any], group: str) -> dict[str, Any]:
    return {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def nonempty(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """One to three entries, or 1 time in 6 a list of any size (empty included)."""
    return st.integers(0, 5).flatmap(
        lambda k: some(element) if k == 0 else st.lists(element, min_size=1, max_size=3)
    )


def _selector(w: Wild, labels: dict[str, str], key: str = "matchLabels") -> Any:
    pairs = list(labels.items())
    return st.builds(lambda k, v: {key: {k: v}}, w.t(pairs[0][0]), w.t(pairs[0][1]))


def authorization_policy(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    wildcard = st.sampled_from(["spiffe://cluster.local/ns/default/sa/a", "*", "*/sa/a", "ns/*"])
    source = maybe(
        {
            "principals": some(w.t(wildcard)),
            "notPrincipals": some(w.t(wildcard)),
            "requestPrincipals": some(w.t(st.sampled_from(["iss/sub", "*", "iss/*"]))),
            "namespaces": some(w.t(st.sampled_from(["default", "shop", "*"]))),
            "notNamespaces": some(w.t("shop")),
            "ipBlocks": some(w.t(st.sampled_from(["10.0.0.0/8", "1.2.3.4", "::1/128"]))),
            "remoteIpBlocks": some(w.t("192.168.0.0/16")),
        }
    )
    operation = maybe(
        {
            "hosts": some(w.t(st.sampled_from(["shop.example.com", "*.example.com", "*"]))),
            "notHosts": some(w.t("a.example.com")),
            "ports": some(w.t(st.sampled_from(["8080", "80"]))),
            "methods": some(w.t(st.sampled_from(["GET", "POST", "*"]))),
            "paths": some(w.t(st.sampled_from(["/api/*", "*/info", "/exact", "*"]))),
            "notPaths": some(w.t("/admin*")),
        }
    )
    key = w.t(
        st.sampled_from(
            [k for k in CONDITION_KEYS if k not in ("request.headers", "request.auth.claims")]
            + ["request.headers[x-a]", "request.auth.claims[groups]"]
        )
    )
    value = w.t(st.sampled_from(["a", "10.0.0.0/8", "8080", "*", "admin*", "spiffe://x"]))
    condition = st.builds(
        lambda k, v, n: {"key": k} | ({"values": v} if v else {}) | ({"notValues": n} if n else {}),
        key,
        some(value),
        some(value, most=1),
    )
    rule = maybe(
        {
            "from": some(st.builds(lambda s: {"source": s}, source), most=2),
            "to": some(st.builds(lambda o: {"operation": o}, operation), most=2),
            "when": some(condition, most=2),
        }
    )
    spec = maybe(
        {
            "selector": _selector(w, CLIENT),
            "action": w.t(st.sampled_from(["ALLOW", "DENY", "AUDIT"])),
            "rules": some(rule, most=2),
        }
    )
    return spec.map(lambda s: _doc("AuthorizationPolicy", "authz", s, "security.istio.io/v1"))


def request_authentication(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    header = st.builds(
        lambda n, p: {"name": n, "prefix": p},
        w.t(st.sampled_from(["authorization", "x-jwt"])),
        w.t(st.sampled_from(["Bearer ", ""])),
    )
    claim = st.builds(
        lambda h, c: {"header": h, "claim": c}, w.t("x-sub"), w.t(st.sampled_from(["sub", "a.b"]))
    )
    rule = st.builds(
        lambda issuer, rest: {"issuer": issuer} | rest,
        w.t(st.sampled_from(["https://issuer.example", "iss"])),
        maybe(
            {
                "audiences": some(w.t("shop")),
                "jwks": w.t(JWKS),
                "fromHeaders": some(header, most=2),
                "fromParams": some(w.t("token")),
                "fromCookies": some(w.t("session")),
                "outputPayloadToHeader": w.t("x-payload"),
                "forwardOriginalToken": w.b(),
                "outputClaimToHeaders": some(claim, most=2),
                "timeout": w.d(),
            }
        ),
    )
    spec = maybe({"selector": _selector(w, CLIENT), "jwtRules": some(rule, most=2)})
    return spec.map(lambda s: _doc("RequestAuthentication", "jwt", s, "security.istio.io/v1"))


def peer_authentication(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    mode = st.builds(
        lambda m: {"mode": m},
        w.t(st.sampled_from(["UNSET", "DISABLE", "PERMISSIVE", "STRICT"])),
    )
    spec = maybe(
        {
            "selector": _selector(w, CLIENT),
            "mtls": mode,
            "portLevelMtls": st.dictionaries(w.n(st.sampled_from([8080, 9090])), mode, max_size=2),
        }
    )
    return spec.map(lambda s: _doc("PeerAuthentication", "peers", s, "security.istio.io/v1"))


def telemetry(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    metric = w.t(st.sampled_from(["ALL_METRICS", "REQUEST_COUNT", "TCP_SENT_BYTES"]))
    mode = w.t(st.sampled_from(["CLIENT_AND_SERVER", "CLIENT", "SERVER"]))
    cel = w.t(
        st.sampled_from(
            [
                "request.host",
                "request.headers['x-a']",
                "string(response.code)",
                "'lit'",
                "a b",
                "int(response.code) + 1",
                "[1].exists(x, x > 0)",
                "has(request.x)",
                "size(a,)",
                "request.path.startsWith('/a')",
                "x{a: 1}",
            ]
        )
    )
    tag = st.builds(
        lambda op, v: {"operation": op} | ({"value": v} if v is not None else {}),
        w.t(st.sampled_from(["UPSERT", "REMOVE"])),
        st.none() | cel,
    )
    override = maybe(
        {
            "match": maybe({"metric": metric, "mode": mode}),
            "disabled": w.b(),
            "tagOverrides": st.dictionaries(
                w.t(st.sampled_from(["request_host", "custom_tag", "destination_app"])),
                tag,
                max_size=2,
            ),
        }
    )
    metrics = maybe(
        {
            "providers": some(st.builds(lambda n: {"name": n}, w.t("prometheus")), most=1),
            "overrides": some(override, most=2),
        }
    )
    access = maybe(
        {
            "providers": some(st.builds(lambda n: {"name": n}, w.t("envoy")), most=1),
            "match": maybe({"mode": mode}),
            "disabled": w.b(),
        }
    )
    tracing = maybe(
        {
            "providers": some(st.builds(lambda n: {"name": n}, w.t("otel")), most=1),
            "match": maybe({"mode": mode}),
            "randomSamplingPercentage": w.f(st.floats(0, 100)),
            "disableSpanReporting": w.b(),
        }
    )
    spec = maybe(
        {
            "selector": _selector(w, CLIENT),
            "metrics": some(metrics, most=2),
            "accessLogging": some(access, most=2),
            "tracing": some(tracing, most=1),
        }
    )
    return spec.map(lambda s: _doc("Telemetry", "telemetry", s, "telemetry.istio.io/v1"))


def sidecar_kind(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    spec = maybe(
        {
            "workloadSelector": _selector(w, CLIENT, key="labels"),
            "outboundTrafficPolicy": maybe(
                {"mode": w.t(st.sampled_from(["ALLOW_ANY", "REGISTRY_ONLY"]))}
            ),
            "egress": some(
                st.builds(
                    lambda h: {"hosts": h},
                    some(
                        w.t(
                            st.sampled_from(
                                ["./*", "istio-system/*", "*/svc0.shop.svc.cluster.local"]
                            )
                        )
                    ),
                ),
                most=2,
            ),
        }
    )
    return spec.map(lambda s: _doc("Sidecar", "sidecar", s, "networking.istio.io/v1"))


def local_rate_limit(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    spec = st.builds(
        lambda sel, m, rest: sel | {"maxTokens": m} | rest,
        maybe({"workloadSelector": _selector(w, CLIENT, key="labels")}),
        w.n(st.integers(1, 1000)),
        st.builds(
            lambda f, t: {"fillInterval": f} | t,
            w.d(st.sampled_from(["50ms", "1s", "1m"])),
            maybe({"tokensPerFill": w.n(st.integers(1, 100))}),
        ),
    )
    return spec.map(lambda s: _doc("LocalRateLimit", "limit", s, "shoal.dev/v1alpha1"))


def workload_entry(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    spec = st.builds(
        lambda a, rest: {"address": a, "labels": CLIENT} | rest,
        w.t(st.sampled_from(["127.0.0.1", "10.1.0.7", "client.example.internal"])),
        maybe(
            {
                "ports": st.dictionaries(w.t("http"), w.n(8080), max_size=1),
                "weight": w.n(st.integers(1, 100)),
                "locality": w.t(st.sampled_from(["us-east/zone-a", "eu/z1/s1"])),
                "network": w.t("net1"),
                "serviceAccount": w.t("client"),
            }
        ),
    )
    return spec.map(lambda s: _doc("WorkloadEntry", "client-1", s, "networking.istio.io/v1"))


def _tcp_on_9000(server: dict[str, Any]) -> dict[str, Any]:
    # usually HTTP on 8080, TCP on 9000, HTTPS on 8443, TLS on 9443: servers of a port agree
    port = server["port"]
    if port["number"] in (8080, 9000) and port["protocol"] in ("HTTP", "HTTP2", "GRPC", "TCP"):
        port["number"] = 9000 if port["protocol"] == "TCP" else 8080
    if port["number"] in (8443, 9443) and port["protocol"] in ("HTTPS", "TLS"):
        port["number"] = 9443 if port["protocol"] == "TLS" else 8443
    return server


def gateway(w: Wild) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A Gateway of one to three servers and a VirtualService bound to it."""
    names = w.t(st.sampled_from(["shop.example.com", "*.example.com", "*", "./shop.example.com"]))
    hosts = nonempty(names)
    tls = maybe(
        {
            "minProtocolVersion": w.t(st.sampled_from(["TLSV1_2", "TLSV1_3", "TLS_AUTO"])),
            "maxProtocolVersion": w.t(st.sampled_from(["TLSV1_3", "TLS_AUTO"])),
        }
    ).flatmap(lambda t: w.t(CREDENTIAL).map(lambda c: {"mode": "SIMPLE", "credentialName": c} | t))
    plain = st.builds(
        lambda n, p, h: {"port": {"number": n, "name": "p", "protocol": p}, "hosts": h},
        w.n(st.sampled_from([8080, 9000])),
        w.t(st.sampled_from(["HTTP", "HTTP2", "GRPC", "TCP"])),
        hosts,
    ).map(_tcp_on_9000)
    secured = st.builds(
        lambda n, p, h, t: {
            "port": {"number": n, "name": "s", "protocol": p},
            "hosts": h,
            "tls": t,
        },
        w.n(st.sampled_from([8443, 9443])),
        w.t(st.sampled_from(["HTTPS", "TLS"])),
        hosts,
        tls,
    ).map(_tcp_on_9000)
    spec = st.builds(
        lambda sel, servers: {"selector": sel, "servers": servers},
        _selector(w, GATEWAY, key="labels").map(lambda s: s["labels"]),
        nonempty(plain | secured),
    )
    route = http_route(w, "svc0.default.svc.cluster.local", 80)
    tcp = st.builds(
        lambda port: {
            "match": [{"port": port}],
            "route": [{"destination": {"host": "svc0.default.svc.cluster.local",
                                       "port": {"number": 80}}}],
        },
        w.n(st.sampled_from([9000, 9443])),
    )  # fmt: skip
    vs = st.builds(
        lambda hosts, http, tcps: {
            "hosts": hosts,
            "gateways": ["edge"],
            "http": http,
            "tcp": tcps,
        },
        some(w.t(st.sampled_from(["shop.example.com", "a.example.com"])), most=2),
        st.lists(route, min_size=1, max_size=2),
        st.lists(tcp, max_size=1),
    )
    return st.tuples(spec, vs).map(
        lambda t: [
            _doc("Gateway", "edge", t[0], "networking.istio.io/v1"),
            _doc("VirtualService", "edge", t[1], "networking.istio.io/v1"),
        ]
    )


def mesh_config(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    backend = st.builds(
        lambda s, p: {"service": s, "port": p},
        w.t(st.sampled_from(["otel.default.svc.cluster.local", "zipkin.example.com"])),
        w.n(st.sampled_from([4317, 9411])),
    )
    provider = st.one_of(
        st.builds(lambda b: {"name": "otel", "opentelemetry": b}, backend),
        st.builds(lambda b: {"name": "otel", "zipkin": b}, backend),
    )
    fmt = st.sampled_from(
        [
            "[%START_TIME%] %REQ(:METHOD)% %RESPONSE_CODE%\n",
            "%UPSTREAM_HOST% plain",
            "100%% ok",
            "%CEL(request.host)% %DYNAMIC_METADATA(ns:k):5%",
            "%GRPC_STATUS(NUMBER)%",
            "%FOO%",
            "%RESPONSE_CODE:3%",
            "100% ok",
            "%CEL(a b)%",
            "%START_TIME(%s)% %REQ(x?y):2%",
        ]
    )
    spec = maybe(
        {
            "defaultHttpRetryPolicy": maybe(
                {
                    "attempts": w.n(st.integers(0, 5)),
                    "perTryTimeout": w.d(),
                    "retryOn": w.t(st.sampled_from(["5xx", "gateway-error,503"])),
                }
            ),
            "defaultServiceExportTo": some(w.t(st.sampled_from(["*", ".", "default"])), most=1),
            "skipEmptyDestinations": w.b(),
            "accessLogFile": w.t(st.sampled_from(["/dev/stdout", "/tmp/shoal-access.log"])),
            "accessLogEncoding": w.t(st.sampled_from(["TEXT", "JSON"])),
            "accessLogFormat": w.t(fmt),
            "extensionProviders": st.lists(provider, max_size=1),
        }
    ).map(
        lambda s: (
            s | ({"defaultProviders": {"tracing": ["otel"]}} if s.get("extensionProviders") else {})
        )
    )
    return spec.map(lambda s: _doc("MeshConfig", "mesh", s, "shoal.dev/v1alpha1"))


def local_workload(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    port = st.builds(
        lambda n, p, t: {"number": n, "name": "http", "protocol": p} | t,
        w.n(st.just(8081)),
        w.t(st.sampled_from(["HTTP", "TCP", "GRPC"])),
        maybe({"targetPort": w.n(st.just(9081))}),
    )
    spec = st.builds(
        lambda ports, cmd, rest: {"ports": ports, "command": cmd} | rest,
        st.lists(port, min_size=1, max_size=1),
        some(w.t(st.sampled_from(["python3", "-m", "http.server"]))),
        maybe(
            {
                "service": w.t("local-svc"),
                "labels": st.dictionaries(w.t("app"), w.t("local"), max_size=1),
                "serviceAccount": w.t("local"),
                "replicas": w.n(st.integers(0, 3)),
                "env": st.dictionaries(w.t("PORT"), w.t("9081"), max_size=1),
            }
        ),
    )
    return spec.map(lambda s: _doc("LocalWorkload", "local", s, "shoal.dev/v1alpha1"))


def local_gateway(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    spec = maybe({"labels": st.just(GATEWAY), "serviceAccount": w.t("ingress")})
    return spec.map(lambda s: _doc("LocalGateway", "ingress", s, "shoal.dev/v1alpha1"))


KINDS = (
    "AuthorizationPolicy",
    "RequestAuthentication",
    "PeerAuthentication",
    "Telemetry",
    "Sidecar",
    "LocalRateLimit",
    "WorkloadEntry",
    "Gateway",
    "MeshConfig",
    "LocalWorkload",
    "LocalGateway",
)
STRATEGIES = {
    "AuthorizationPolicy": authorization_policy,
    "RequestAuthentication": request_authentication,
    "PeerAuthentication": peer_authentication,
    "Telemetry": telemetry,
    "Sidecar": sidecar_kind,
    "LocalRateLimit": local_rate_limit,
    "WorkloadEntry": workload_entry,
    "MeshConfig": mesh_config,
    "LocalWorkload": local_workload,
    "LocalGateway": local_gateway,
}


@st.composite
def documents(draw: st.DrawFn, rate: int, rare: int) -> tuple[str, list[dict[str, Any]]]:
    """(the kind drawn to go wild often, one document of every kind; the rest go wild rarely)."""
    target = draw(st.sampled_from(KINDS))
    docs: list[dict[str, Any]] = []
    for kind in KINDS:
        w = Wild(rate if kind == target else rare)
        if kind == "Gateway":
            docs += draw(gateway(w))
        else:
            docs.append(draw(STRATEGIES[kind](w)))
    return target, docs
