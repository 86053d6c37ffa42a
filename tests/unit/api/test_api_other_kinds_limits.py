"""Fields of the security, gateway and shoal.dev kinds checked to what they become in Envoy.

Each case was found by the whole-type property test (tests/property/
test_envoy_accepts_any_input_other_kinds.py): accepted before, then NACKed by Envoy or a crash
of the generator. Now a load error naming the field, and its valid neighbours still accepted.
"""

from __future__ import annotations

import pytest

from shoal.api import ConfigStore


def _errors(kind: str, group: str, spec: str) -> list[str]:
    text = f"""apiVersion: {group}
kind: {kind}
metadata: {{name: x, namespace: default}}
spec:
{spec}"""
    return [f"{e.field}: {e.message}" for e in ConfigStore().update({"f.yaml": text}).errors]


def _authz(rules: str) -> list[str]:
    return _errors("AuthorizationPolicy", "security.istio.io/v1", f"  rules: [{rules}]\n")


@pytest.mark.parametrize(
    ("rules", "where"),
    [
        ("{from: [{source: {ipBlocks: ['300.1.1.1/8']}}]}", "ipBlocks[0]"),
        ("{from: [{source: {notRemoteIpBlocks: ['1.2.3.4/33']}}]}", "notRemoteIpBlocks[0]"),
        ("{from: [{source: {remoteIpBlocks: ['10.0.0.0/x']}}]}", "remoteIpBlocks[0]"),
        ("{to: [{operation: {ports: ['\u00b2']}}]}", "ports[0]"),
        ("{when: [{key: source.ip, values: ['1.2.3.4/x']}]}", "when[0].values[0]"),
        ("{when: [{key: remote.ip, notValues: ['host']}]}", "when[0].notValues[0]"),
        ("{when: [{key: destination.port, values: ['70000']}]}", "when[0].values[0]"),
    ],
)
def test_authorization_policy_addresses_and_ports(rules: str, where: str) -> None:
    (error,) = _authz(rules)
    assert where in error, error


def test_authorization_policy_valid_addresses_and_ports() -> None:
    assert not _authz(
        "{from: [{source: {ipBlocks: ['10.0.0.0/8', '1.2.3.4', '::1/128', '0.0.0.0/0']}}],"
        " to: [{operation: {ports: ['80', '65535'], hosts: ['*']}}],"
        " when: [{key: destination.port, values: ['8080']}, {key: source.ip, values: ['::1']}]}"
    )


def test_local_rate_limit_tokens_fit_envoys_uint32() -> None:
    spec = "  maxTokens: {}\n  tokensPerFill: {}\n  fillInterval: 1s\n"
    group = "shoal.dev/v1alpha1"
    assert not _errors("LocalRateLimit", group, spec.format(2**32 - 1, 2**32 - 1))
    errors = _errors("LocalRateLimit", group, spec.format(2**32, 2**32))
    assert [e.split(":")[0] for e in errors] == ["spec.maxTokens", "spec.tokensPerFill"], errors


def test_request_authentication_header_and_cookie_names() -> None:
    group = "security.istio.io/v1"
    bad = (
        "  jwtRules: [{issuer: x, fromHeaders: [{name: 'a b'}], outputPayloadToHeader: 'a b',"
        " fromParams: [''], fromCookies: ['a;b'],"
        " outputClaimToHeaders: [{header: 'x y', claim: s}]}]\n"
    )
    fields = sorted(e.split(":")[0] for e in _errors("RequestAuthentication", group, bad))
    assert fields == [
        "spec.jwtRules[0].fromCookies[0]",
        "spec.jwtRules[0].fromHeaders[0].name",
        "spec.jwtRules[0].fromParams[0]",
        "spec.jwtRules[0].outputClaimToHeaders[0].header",
        "spec.jwtRules[0].outputPayloadToHeader",
    ], fields
    good = (
        "  jwtRules: [{issuer: x, fromHeaders: [{name: x-jwt, prefix: 'Bearer '}],"
        " outputPayloadToHeader: x-payload, fromParams: [token], fromCookies: [session]}]\n"
    )
    assert not _errors("RequestAuthentication", group, good)


def _gateway(server: str) -> list[str]:
    spec = f"  selector: {{istio: ingressgateway}}\n  servers: [{server}]\n"
    return _errors("Gateway", "networking.istio.io/v1", spec)


@pytest.mark.parametrize(
    ("hosts", "bad"),
    [
        ("['a*b.example.com']", "hosts[0]"),
        ("['Bad/x.example.com']", "hosts[0]"),
        ("['ok.example.com', 'a b']", "hosts[1]"),
        ("['./']", "hosts[0]"),
    ],
)
def test_gateway_hosts_are_namespace_slash_dns_names(hosts: str, bad: str) -> None:
    (error,) = _gateway(f"{{port: {{number: 80, name: h, protocol: HTTP}}, hosts: {hosts}}}")
    assert f"servers[0].{bad}" in error, error


def test_gateway_hosts_valid_forms() -> None:
    hosts = "['*', '*.example.com', './a.example.com', '*/b.example.com', 'shop/c.example.com']"
    assert not _gateway(f"{{port: {{number: 80, name: h, protocol: HTTP}}, hosts: {hosts}}}")


def test_gateway_tls_versions_are_istios_and_ordered() -> None:
    def server(tls: str) -> str:
        return (
            "{port: {number: 443, name: s, protocol: HTTPS}, hosts: ['*'],"
            f" tls: {{mode: SIMPLE, credentialName: c, {tls}}}}}"
        )

    assert not _gateway(server("minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3"))
    (error,) = _gateway(server("minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2"))
    assert "above maxProtocolVersion" in error, error
    (error,) = _gateway(server("minProtocolVersion: bogus"))
    assert error.startswith("spec.servers[0].tls.minProtocolVersion"), error


def test_gateway_tls_servers_of_one_port_are_told_apart_by_sni() -> None:
    def server(hosts: str) -> str:
        return (
            f"{{port: {{number: 443, name: s, protocol: HTTPS}}, hosts: {hosts},"
            " tls: {mode: SIMPLE, credentialName: c}}"
        )

    assert not _gateway(server("[a.example.com]") + ", " + server("['*.example.com']"))
    (error,) = _gateway(
        server("[a.example.com, '*.example.com']") + ", " + server("['*.example.com']")
    )
    assert error.startswith("spec.servers[1].hosts") and "by SNI" in error, error
    (error,) = _gateway(server("['*']") + ", " + server("['./*']"))
    assert "'*' on port 443 is already served" in error, error
