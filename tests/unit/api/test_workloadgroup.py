"""WorkloadGroup validation: a group parses into its template and probe; mistakes name the
file, the line and the field."""

from __future__ import annotations

from shoal.api import parse_file
from shoal.api.workloadgroup import WorkloadGroupSpec

GROUP = """\
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: reviews, namespace: shop}
spec:
  metadata:
    labels: {app: reviews, version: v3}
    annotations: {team: books}
  template:
    ports: {http: 9080}
    serviceAccount: reviews
    weight: 2
  probe:
    periodSeconds: 2
    failureThreshold: 2
    httpGet: {path: /ready, port: 9080, httpHeaders: [{name: x-probe, value: "1"}]}
"""


def test_a_group_parses_into_its_template_and_probe() -> None:
    resources, errors = parse_file("g.yaml", GROUP)
    assert errors == []
    (res,) = resources
    assert res.kind == "WorkloadGroup" and res.namespaced_name == "shop/reviews"
    spec = res.spec
    assert isinstance(spec, WorkloadGroupSpec)
    assert spec.metadata.labels == {"app": "reviews", "version": "v3"}
    assert spec.template.ports == {"http": 9080} and spec.template.service_account == "reviews"
    assert spec.template.weight == 2
    assert spec.probe is not None and spec.probe.http_get is not None
    assert spec.probe.http_get.path == "/ready" and spec.probe.period_seconds == 2
    assert spec.probe.timeout_seconds == 1  # Kubernetes' default


def _error(text: str) -> tuple[str, int, str]:
    _, errors = parse_file("g.yaml", text)
    assert len(errors) == 1, errors
    (err,) = errors
    assert err.file == "g.yaml"
    return err.field, err.line, err.message


def test_a_template_address_is_refused_at_its_line() -> None:
    text = GROUP.replace(
        "    ports: {http: 9080}\n", "    address: 10.0.0.9\n    ports: {http: 9080}\n"
    )
    field, line, message = _error(text)
    assert field == "spec.template.address" and line == 9
    assert "each workload registers its own" in message


def test_a_probe_needs_exactly_one_method() -> None:
    text = GROUP.replace("    httpGet:", "    tcpSocket: {port: 9080}\n    httpGet:")
    field, line, message = _error(text)
    assert field.startswith("spec.probe") and line >= 12
    assert "exactly one of httpGet, tcpSocket, exec" in message


def test_a_probe_port_must_be_a_number() -> None:
    field, line, message = _error(GROUP.replace("port: 9080,", 'port: "9080",'))
    assert field == "spec.probe.httpGet.port" and line == 15, message


def test_a_grpc_probe_is_refused_as_not_implemented() -> None:
    text = GROUP.replace(
        '    httpGet: {path: /ready, port: 9080, httpHeaders: [{name: x-probe, value: "1"}]}\n',
        "    grpc: {port: 9080}\n",
    )
    _, errors = parse_file("g.yaml", text)
    said = {e.field: e.message for e in errors}
    assert "does not implement yet" in said["spec.probe.grpc"], errors


def test_a_group_without_a_template_is_refused() -> None:
    text = GROUP.split("  template:", maxsplit=1)[0]
    field, _, message = _error(text)
    assert field == "spec.template", message
