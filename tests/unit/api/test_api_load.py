"""Loading YAML files into Resources, and the errors users see when that fails."""

import textwrap

import pytest
from api_samples import ALL, BOOKINFO_SERVICES, REVIEWS_VS

from shoal.api import (
    ConfigError,
    InvalidConfigError,
    Resource,
    ServiceEntrySpec,
    VirtualServiceSpec,
    parse_file,
    parse_text,
)


def _errors(text: str, file: str = "mesh.yaml") -> list[ConfigError]:
    resources, errors = parse_file(file, textwrap.dedent(text))
    assert not resources
    assert errors
    return errors


def _vs(http: str) -> str:
    head = """\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
          namespace: shop
        spec:
          hosts: [reviews]
          http:
        """
    return textwrap.dedent(head) + textwrap.indent(textwrap.dedent(http), "  ")


@pytest.mark.parametrize("name", sorted(ALL))
def test_istio_documentation_examples_load(name: str) -> None:
    resources, errors = parse_file(name, ALL[name])
    assert errors == []
    assert resources


def test_resource_fields_and_defaults() -> None:
    (vs,) = parse_text(REVIEWS_VS)
    assert vs.key == ("VirtualService", "default", "reviews")
    assert isinstance(vs.spec, VirtualServiceSpec)
    assert vs.spec.http[0].route[0].weight == 100  # a lone destination gets all traffic
    assert vs.spec.http[0].match[0].headers["end-user"].exact == "jason"
    assert [d.weight for d in vs.spec.http[1].route] == [75, 25]
    se = parse_text(BOOKINFO_SERVICES)[0]
    assert isinstance(se.spec, ServiceEntrySpec)
    assert se.spec.ports[0].protocol == "HTTP"  # normalised from "http"


def test_unknown_field_names_file_line_path_and_suggests() -> None:
    text = _vs(
        """\
        - route:
          - destination:
              host: reviews
            weigth: 100
        """
    )
    (error,) = _errors(text)
    assert error.file == "mesh.yaml"
    assert error.line == 12
    assert error.field == "spec.http[0].route[0].weigth"
    assert "did you mean 'weight'" in error.message
    assert error.kind == "VirtualService"
    assert error.name == "shop/reviews"
    assert str(error) == (
        "mesh.yaml:12: VirtualService shop/reviews: spec.http[0].route[0].weigth: "
        "unknown field 'weigth' (did you mean 'weight'?)"
    )
    assert error.to_json()["line"] == 12


def test_unimplemented_istio_field_is_not_called_a_typo() -> None:
    text = _vs(
        """\
        - delegate:
            name: reviews-routes
          match:
          - uri: {prefix: /}
        """
    )
    (error,) = _errors(text)
    assert error.field == "spec.http[0].delegate"
    assert error.line == 9
    assert "Istio field that shoal does not implement yet" in error.message


def test_unimplemented_destination_rule_fields() -> None:
    errors = _errors(
        """\
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
          trafficPolicy:
            tls: {mode: SIMPLE, caCrl: /etc/crl.pem}
            loadBalancer:
              warmupDurationSecs: 10s
        """
    )
    assert [(e.field, e.line) for e in errors] == [
        ("spec.trafficPolicy.tls.caCrl", 7),
        ("spec.trafficPolicy.loadBalancer.warmupDurationSecs", 9),
    ]
    assert all("does not implement yet" in e.message for e in errors)


def test_wrong_type_shows_value() -> None:
    text = _vs(
        """\
        - route:
          - destination:
              host: reviews
              port: {number: "eighty"}
        """
    )
    (error,) = _errors(text)
    assert error.field == "spec.http[0].route[0].destination.port.number"
    assert error.line == 12
    assert "valid integer" in error.message
    assert "'eighty'" in error.message


def test_weights_must_add_up_to_100() -> None:
    text = _vs(
        """\
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 50
          - destination: {host: reviews, subset: v2}
            weight: 40
        """
    )
    (error,) = _errors(text)
    assert error.field == "spec.http[0].route"
    assert error.line == 9
    assert "add up to 90" in error.message


def test_single_destination_with_partial_weight() -> None:
    (error,) = _errors(_vs("- route:\n  - destination: {host: reviews}\n    weight: 30\n"))
    assert error.field == "spec.http[0].route[0].weight"


def test_http_route_needs_destinations() -> None:
    (error,) = _errors(_vs("- name: empty\n"))
    assert error.field == "spec.http[0].route"


def test_malformed_yaml_reports_line() -> None:
    (error,) = _errors("apiVersion: v1\nkind: X\nspec:\n  hosts: [a, b\n  ports: 1\n")
    assert error.file == "mesh.yaml"
    assert error.line == 5
    assert error.message.startswith("invalid YAML")


def test_duplicate_keys_are_errors() -> None:
    text = _vs("- route:\n  - destination: {host: reviews}\n")
    text = text.replace("  hosts: [reviews]\n", "  hosts: [reviews]\n  hosts: [ratings]\n")
    (error,) = _errors(text)
    assert error.line == 8
    assert error.field == "spec.hosts"
    assert "duplicate key 'hosts' (first given on line 7)" in error.message


def test_envelope_errors() -> None:
    errors = _errors(
        """\
        apiVersion: networking.istio.io/v2
        kind: VirtualService
        metadata: {name: Bad_Name}
        specs: {}
        """
    )
    messages = {e.field: e.message for e in errors}
    assert "did you mean 'spec'" in messages["specs"]
    assert "networking.istio.io/v1" in messages["apiVersion"]
    assert "DNS-1123" in messages["metadata.name"]
    (unknown,) = _errors("apiVersion: x/v1\nkind: Gizmo\nmetadata: {name: a}\n")
    assert unknown.field == "kind"
    assert "VirtualService" in unknown.message


def test_not_a_mapping_and_empty_documents() -> None:
    resources, errors = parse_file("f.yaml", "---\n---\n# just a comment\n---\n- 1\n")
    assert resources == []
    assert [(e.line, e.field) for e in errors] == [(5, "")]


def test_second_document_errors_do_not_hide_the_first() -> None:
    text = BOOKINFO_SERVICES + "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
    resources, errors = parse_file("f.yaml", text)
    assert len(resources) == 3
    assert {e.field for e in errors} == {"metadata", "spec.hosts"}


@pytest.mark.parametrize(
    ("match", "problem"),
    [
        ("{regex: '(?=a)b'}", "no lookaround"),
        ("{regex: '(a)\\1'}", "backreference"),
        ("{regex: '[unclosed'}", "invalid regex"),
        ("{exact: a, prefix: b}", "only one"),
        ("{}", "set one of"),
    ],
)
def test_string_match_rules(match: str, problem: str) -> None:
    text = _vs(f"- match:\n  - uri: {match}\n  route:\n  - destination: {{host: reviews}}\n")
    (error,) = _errors(text)
    assert error.field.startswith("spec.http[0].match[0].uri")
    assert problem in error.message


def test_re2_constructs_python_lacks_are_accepted() -> None:
    text = _vs(
        "- match:\n  - uri: {regex: '/a[[:alpha:]]+\\z'}\n"
        "  route:\n  - destination: {host: reviews}\n"
    )
    assert parse_text(text)


def test_service_entry_rules() -> None:
    base = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n"
    cases = {
        "  hosts: [a]\n  resolution: STATIC\n": "spec.resolution",
        "  hosts: [a]\n  resolution: STATIC\n  endpoints: [{address: foo.com}]\n": (
            "spec.endpoints[0].address"
        ),
        "  hosts: [a]\n  ports: [{number: 80, name: h}, {number: 80, name: g}]\n": (
            "spec.ports[1].number"
        ),
        "  hosts: [a]\n  ports: [{number: 80, name: h}, {number: 81, name: h}]\n": (
            "spec.ports[1].name"
        ),
        "  hosts: [a]\n  endpoints: [{address: 1.2.3.4}]\n  workloadSelector: {labels: {}}\n": (
            "spec.workloadSelector"
        ),
        "  hosts: []\n": "spec.hosts",
        "  hosts: [a]\n  ports: [{number: 80, name: h, protocol: SMTP}]\n": (
            "spec.ports[0].protocol"
        ),
    }
    for spec, field in cases.items():
        (error,) = _errors(base + spec)
        assert error.field == field, spec


def test_resources_compare_without_origin_and_hash() -> None:
    (a,) = parse_text(REVIEWS_VS, "one.yaml")
    (b,) = parse_text("\n\n# moved\n" + REVIEWS_VS, "two.yaml")
    assert a.origin != b.origin
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    (c,) = parse_text(REVIEWS_VS.replace("weight: 75", "weight: 76").replace("25", "24"))
    assert c != a


def test_resource_error_is_located_by_origin() -> None:
    (vs,) = parse_text(REVIEWS_VS, "vs.yaml")
    assert isinstance(vs, Resource)
    error = vs.error(("spec", "http", 1, "route", 1, "destination", "subset"), "nope")
    assert (error.file, error.line, error.field) == (
        "vs.yaml",
        24,
        "spec.http[1].route[1].destination.subset",
    )
    # A path that does not exist falls back to its longest known prefix.
    assert vs.origin.line_of(("spec", "http", 1, "missing")) == 17


def test_parse_text_raises_with_every_error() -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_text("a: [\n")
    assert len(info.value.errors) == 1


def test_errors_deep_in_a_large_file_keep_file_line_and_field() -> None:
    """Lines are worked out only for an error (yamlload.py); they must be the exact ones."""
    entry = textwrap.dedent(
        """\
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: svc-N, namespace: default}
        spec:
          hosts: [svc-N.default.svc.cluster.local]
          resolution: STATIC
          ports: [{number: 80, name: http, protocol: HTTP}]
          endpoints:
          - address: 10.0.0.1
          - address: 10.0.0.2
            ports: {http: PORT}
        """
    )
    docs = [entry.replace("N", str(i)).replace("PORT", "8080") for i in range(300)]
    docs[217] = docs[217].replace("8080", "not-a-port")
    text = "---\n".join(docs)
    resources, errors = parse_file("inventory.yaml", text)
    assert len(resources) == 299
    (error,) = errors
    bad_line = text.splitlines().index("    ports: {http: not-a-port}") + 1
    assert (error.file, error.line) == ("inventory.yaml", bad_line)
    assert error.field == "spec.endpoints[1].ports.http" and error.name == "default/svc-217"
    # a valid resource's origin gives lines too (cross-resource errors need them)
    good = next(r for r in resources if r.meta.name == "svc-5")
    assert (
        good.origin.line_of(("spec", "hosts"))
        == text.splitlines().index("  hosts: [svc-5.default.svc.cluster.local]") + 1
    )
