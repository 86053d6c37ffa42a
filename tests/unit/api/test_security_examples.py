"""Istio's security examples (PeerAuthentication, AuthorizationPolicy, RequestAuthentication,
from the comments of istio/api security/v1beta1 protos and the security tasks) load
unchanged and generate inbound config for a secure sidecar they select."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator
from shoal.generate.prepared import LISTENER
from shoal.model import build_snapshot, parse_proxy

EXAMPLES = Path(__file__).parent / "security_examples"
DOCS = [
    (f"{path.stem}:{yaml.safe_load(doc)['metadata']['name']}", doc)
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for doc in path.read_text().split("\n---\n")
]


def test_every_example_was_found() -> None:
    assert len(DOCS) == 14


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_istio_security_example_loads_and_generates(name: str, doc: str) -> None:
    result = ConfigStore().update({"example.yaml": doc})
    assert not result.errors, [str(e) for e in result.errors]
    gen = ConfigGenerator(build_snapshot("ex.1", result.resources))
    meta = yaml.safe_load(doc)["metadata"]
    ns = "foo" if meta["namespace"] == "istio-system" else meta["namespace"]
    spec = yaml.safe_load(doc)["spec"] or {}
    labels = (spec.get("selector") or {}).get("matchLabels", {})
    proxy = parse_proxy(
        f"sidecar~127.0.0.1~w.{ns}~{ns}.svc.cluster.local",
        {"NAMESPACE": ns, "LABELS": labels, "INTERCEPTION_MODE": "NONE", "OUTBOUND_PORT": "15001",
         "INBOUND_PORT": "15006", "APP_PORT": "8080", "SECURE": "true"},
    )  # fmt: skip
    assert "inbound_http" in gen.view(proxy).of(LISTENER)
