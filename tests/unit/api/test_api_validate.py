"""Cross-resource validation: references from VirtualServices must resolve."""

from api_samples import ALL, BOOKINFO_SERVICES, REVIEWS_DR, REVIEWS_VS

from shoal.api import Resource, parse_text, validate_references


def _load(**files: str) -> list[Resource]:
    return [r for name, text in files.items() for r in parse_text(text, name)]


def test_istio_examples_are_consistent() -> None:
    resources = _load(**{k.replace("-", "_").replace(".", "_"): v for k, v in ALL.items()})
    accepted, errors = validate_references(resources)
    assert errors == []
    assert accepted == resources


def test_dangling_subset_refuses_the_virtual_service() -> None:
    dr = REVIEWS_DR.split("  - name: v3")[0]
    resources = _load(services=BOOKINFO_SERVICES, dr=dr, vs=REVIEWS_VS)
    accepted, errors = validate_references(resources)
    assert all(r.kind != "VirtualService" for r in accepted)
    assert len(accepted) == len(resources) - 1
    (error,) = errors
    assert error.file == "vs"
    assert error.line == 24
    assert error.field == "spec.http[1].route[1].destination.subset"
    assert error.message == (
        "subset 'v3' is not defined by any DestinationRule for host "
        "'reviews.default.svc.cluster.local' (defined: v1, v2)"
    )


def test_unknown_host_and_destination_rule_without_service() -> None:
    vs = REVIEWS_VS.replace("host: reviews\n        subset: v2", "host: details")
    resources = _load(dr=REVIEWS_DR, vs=vs)
    accepted, errors = validate_references(resources)
    # A DestinationRule for a host nobody serves is allowed, as in Istio.
    assert [r.kind for r in accepted] == ["DestinationRule"]
    assert {e.field for e in errors} == {
        "spec.http[0].route[0].destination.host",
        "spec.http[1].route[0].destination.host",
        "spec.http[1].route[1].destination.host",
    }
    assert any(
        "'details' (resolved to 'details.default.svc.cluster.local')" in e.message for e in errors
    )


SE_TWO_PORTS = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.shop.svc.cluster.local]
  ports:
  - {number: 80, name: http}
  - {number: 8080, name: admin}
"""

VS_API = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: web}
spec:
  hosts: [api.shop]
  http:
  - route:
    - destination:
        host: api.shop
        PORT
"""


def test_ports_must_exist_and_be_chosen() -> None:
    for port, message in [
        ("port: {number: 9090}", "port 9090 is not a port of 'api.shop.svc.cluster.local'"),
        ("", "has several ports (80, 8080); choose one"),
    ]:
        resources = _load(se=SE_TWO_PORTS, vs=VS_API.replace("PORT", port))
        accepted, errors = validate_references(resources)
        assert [r.kind for r in accepted] == ["ServiceEntry"]
        (error,) = errors
        assert message in error.message
    resources = _load(se=SE_TWO_PORTS, vs=VS_API.replace("PORT", "port: {number: 8080}"))
    assert validate_references(resources) == (resources, [])


def test_duplicates_keep_the_first_by_file_and_line() -> None:
    resources = _load(b=REVIEWS_DR, a=REVIEWS_DR)
    accepted, errors = validate_references(resources)
    assert [r.origin.file for r in accepted] == ["a"]
    (error,) = errors
    assert error.file == "b"
    assert error.field == "metadata.name"
    assert "already defined at a:1" in error.message


def test_known_hosts_from_other_registries() -> None:
    (vs,) = parse_text(
        REVIEWS_VS.replace("subset: v1", "").replace("subset: v2", "").replace("subset: v3", "")
    )
    assert validate_references([vs])[0] == []
    hosts = {"reviews.default.svc.cluster.local": [9080]}
    assert validate_references([vs], known_hosts=hosts) == ([vs], [])
