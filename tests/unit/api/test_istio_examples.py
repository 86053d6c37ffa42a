"""Istio's own documentation examples (the YAML in virtual_service.proto's comments, and the
mirroring task) load unchanged and generate Envoy config, with the services they name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shoal.api import ConfigStore, parse_file
from shoal.generate import ConfigGenerator
from shoal.model import build_snapshot, parse_proxy

EXAMPLES = sorted((Path(__file__).parent / "istio_examples").glob("*.yaml"))


def _support(text: str) -> str:
    """A ServiceEntry (port 80) and a DestinationRule (subsets v1, v2) per host named."""
    hosts: set[tuple[str, str]] = set()
    for doc in yaml.safe_load_all(text):
        if doc["kind"] != "VirtualService":
            continue
        ns = doc["metadata"].get("namespace", "default")
        spec = doc["spec"]
        hosts.update((h, ns) for h in spec["hosts"])
        for http in spec.get("http", []):
            for d in http.get("route", []):
                hosts.add((d["destination"]["host"], ns))
            if "mirror" in http:
                hosts.add((http["mirror"]["host"], ns))
    out = []
    for i, (host, ns) in enumerate(sorted(hosts)):
        if host == "wikipedia.org":
            continue  # the example brings its own ServiceEntry
        meta = f"metadata: {{name: s{i}, namespace: {ns}}}"
        out.append(
            f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n{meta}\nspec:\n"
            f"  hosts: [{host}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n"
            f"  ports: [{{number: 80, name: http, protocol: HTTP}}]\n"
            f"  endpoints: [{{address: 10.0.0.{i + 1}, labels: {{version: v1}}}}]\n"
        )
        out.append(
            f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\n{meta}\nspec:\n"
            f"  host: {host}\n  subsets: [{{name: v1, labels: {{version: v1}}}}, "
            f"{{name: v2, labels: {{version: v2}}}}]\n"
        )
    return "---\n".join(out)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_istio_documentation_example_loads_and_generates(path: Path) -> None:
    text = path.read_text()
    resources, errors = parse_file(path.name, text)
    assert not errors, [str(e) for e in errors]
    assert any(r.kind == "VirtualService" for r in resources)

    result = ConfigStore().update({path.name: text, "support.yaml": _support(text)})
    assert not result.errors, [str(e) for e in result.errors]
    gen = ConfigGenerator(build_snapshot("ex.1", result.resources))
    proxy = parse_proxy(
        "sidecar~127.0.0.1~c.default~default.svc.cluster.local",
        {"NAMESPACE": "default", "INTERCEPTION_MODE": "NONE", "OUTBOUND_PORT": "15001"},
    )
    view = gen.view(proxy)
    assert view.of("type.googleapis.com/envoy.config.route.v3.RouteConfiguration")
