"""`shoal install --dry-run` manifests: CRDs for every kind, least rights, the Deployment and
Service, Istio's webhook selectors; the kustomize base holds the same objects."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.kubectl import KUBECTL
from shoal.api.kinds import KIND_SPECS
from shoal.cli.main import main
from shoal.kube.kustomize import kustomize_files
from shoal.kube.manifests import InstallOptions, manifests
from shoal.kube.manifests_webhooks import mutating_webhook, selected_webhooks

REPO = Path(__file__).resolve().parents[3]


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _key(o: dict[str, Any]) -> tuple[str, str, str]:
    meta = o["metadata"]
    return (o["kind"], meta.get("namespace", ""), meta["name"])


def test_dry_run_prints_every_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--dry-run", "--replicas", "3", "--image", "reg/shoal:1"]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    kinds = [d["kind"] for d in printed]
    for kind in (
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ):
        assert kind in kinds
    # CRDs come first, the webhooks last (they call the Service)
    assert kinds.index("Namespace") > kinds.index("CustomResourceDefinition")
    assert kinds[-2:] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    (deploy,) = _by_kind(printed, "Deployment")
    assert deploy["spec"]["replicas"] == 3
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg/shoal:1"
    args = container["args"]
    assert args[:2] == ["control-plane", "--kubernetes"]
    assert args[args.index("--webhook-port") + 1] == "15017"
    assert args[args.index("--proxy-image") + 1] == "reg/shoal:1"


def test_dry_run_with_a_ca_includes_the_secret_and_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--dry-run", "--ca-dir", str(tmp_path / "ca")]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    (secret,) = _by_kind(printed, "Secret")
    assert {"root-cert.pem", "trusted-roots.pem", "ca-key.pem", "token-key"} <= set(secret["data"])
    for hook_kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (config,) = _by_kind(printed, hook_kind)
        for hook in config["webhooks"]:
            assert hook["clientConfig"]["caBundle"] == secret["data"]["trusted-roots.pem"]
    (validator,) = _by_kind(printed, "ValidatingWebhookConfiguration")
    assert validator["webhooks"][0]["failurePolicy"] == "Fail"


def test_crds_cover_every_kind_at_istios_versions() -> None:
    crds = {
        c["spec"]["names"]["kind"]: c for c in _by_kind(manifests(), "CustomResourceDefinition")
    }
    assert set(crds) == set(KIND_SPECS)
    vs = crds["VirtualService"]
    assert vs["metadata"]["name"] == "virtualservices.networking.istio.io"
    assert [v["name"] for v in vs["spec"]["versions"]] == ["v1", "v1beta1", "v1alpha3"]
    assert [v["storage"] for v in vs["spec"]["versions"]] == [True, False, False]
    assert vs["spec"]["names"]["shortNames"] == ["vs"]
    assert crds["ServiceEntry"]["spec"]["names"]["plural"] == "serviceentries"
    assert [v["name"] for v in crds["AuthorizationPolicy"]["spec"]["versions"]] == ["v1", "v1beta1"]
    assert crds["MeshConfig"]["spec"]["group"] == "shoal.dev"
    schema = vs["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    assert vs["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_rights_are_the_least_needed() -> None:
    objects = manifests()
    (cluster_role,) = _by_kind(objects, "ClusterRole")
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in cluster_role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs.setdefault((group, resource), set()).update(rule["verbs"])
    assert verbs[("", "pods")] == {"get", "list", "watch"}
    assert verbs[("discovery.k8s.io", "endpointslices")] == {"get", "list", "watch"}
    assert verbs[("networking.istio.io", "virtualservices")] == {"get", "list", "watch"}
    assert "update" in verbs[("networking.istio.io", "virtualservices/status")]
    assert verbs[("authentication.k8s.io", "tokenreviews")] == {"create"}
    assert verbs[("", "configmaps")] == {"get", "create", "update"}
    assert verbs[("", "events")] == {"create", "patch"}
    assert ("", "secrets") not in verbs  # the CA arrives mounted, never read through the API
    # install writes the webhooks' caBundle; the control plane never touches them
    assert not any(g == "admissionregistration.k8s.io" for g, _ in verbs)
    assert ("coordination.k8s.io", "leases") not in verbs  # only in its own namespace
    (role,) = _by_kind(objects, "Role")
    assert role["metadata"]["namespace"] == "shoal-system"
    assert role["rules"][0]["resources"] == ["leases"]
    assert role["rules"][0]["verbs"] == ["get", "create", "update"]


def test_service_ports() -> None:
    (svc,) = _by_kind(manifests(), "Service")
    ports = {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]}
    assert ports[15012] == 15012  # xDS and the CA (TLS)
    assert ports[443] == 15017  # webhooks, as the configurations call them
    assert ports[15014] == 15014  # admin, metrics


@pytest.mark.parametrize(
    ("ns_labels", "pod_labels", "expected"),
    [
        ({"istio-injection": "enabled"}, {}, ["namespace.sidecar-injector.istio.io"]),
        ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, []),
        # istio-injection beats istio.io/rev
        (
            {"istio-injection": "enabled", "istio.io/rev": "canary"},
            {},
            ["namespace.sidecar-injector.istio.io"],
        ),
        ({}, {"sidecar.istio.io/inject": "true"}, ["object.sidecar-injector.istio.io"]),
        ({}, {}, []),
        ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, []),
        ({}, {"sidecar.istio.io/inject": "true", "istio.io/rev": "canary"}, []),
    ],
)
def test_default_revision_selectors(
    ns_labels: dict[str, str], pod_labels: dict[str, str], expected: list[str]
) -> None:
    assert selected_webhooks(mutating_webhook(), ns_labels, pod_labels) == expected


def test_revision_and_inject_all_selectors() -> None:
    canary = mutating_webhook("canary")
    assert canary["metadata"]["name"] == "istio-sidecar-injector-canary"
    assert selected_webhooks(canary, {"istio.io/rev": "canary"}, {}) == [
        "rev.namespace.sidecar-injector.istio.io"
    ]
    assert (
        selected_webhooks(canary, {"istio-injection": "enabled", "istio.io/rev": "canary"}, {})
        == []
    )
    assert selected_webhooks(canary, {}, {"istio.io/rev": "canary"}) == [
        "rev.object.sidecar-injector.istio.io"
    ]
    assert selected_webhooks(canary, {"istio.io/rev": "stable"}, {}) == []

    auto = mutating_webhook(inject_all=True)
    ns = {"kubernetes.io/metadata.name": "shop"}
    assert selected_webhooks(auto, ns, {}) == ["auto.sidecar-injector.istio.io"]
    system = {"kubernetes.io/metadata.name": "kube-system"}
    assert selected_webhooks(auto, system, {}) == []
    assert selected_webhooks(auto, ns, {"sidecar.istio.io/inject": "false"}) == []


def test_checked_in_kustomize_base_is_current() -> None:
    base = REPO / "deploy" / "kustomize"
    expected = kustomize_files(InstallOptions())
    found = {p.name: p.read_text() for p in base.iterdir() if p.is_file()}
    assert found == expected, "run `shoal install --write-kustomize deploy/kustomize`"


def test_kustomize_build_gives_the_dry_run_objects() -> None:
    # the machine's kubectl (the oracle client; $KUBECTL picks another) has kustomize
    out = subprocess.run(
        [KUBECTL, "kustomize", str(REPO / "deploy" / "kustomize")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    built = {_key(d): d for d in yaml.safe_load_all(out) if d}
    expected = {_key(d): d for d in manifests(InstallOptions())}
    assert built.keys() == expected.keys()
    for key, obj in expected.items():
        assert built[key] == obj, key


def test_deployment_args_are_what_shoal_control_plane_parses() -> None:
    from shoal.cli import kubeargs
    from shoal.cli.main import parser

    (deploy,) = _by_kind(manifests(InstallOptions(revision="canary")), "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["shoal"]
    args = parser().parse_args(container["args"])
    assert args.func.__name__ == "_control_plane"
    assert args.kubernetes and args.config_dir is None and args.kubeconfig is None
    settings = kubeargs.kube_settings(args)
    assert settings is not None and settings.kubeconfig is None  # in-cluster credentials
    assert (args.secure, args.ca_dir, args.host) == (True, "/etc/shoal/ca", "0.0.0.0")
    assert (args.xds_port, args.admin_port, args.webhook_port) == (15012, 15014, 15017)
    assert args.revision == "canary"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/shoal/ca"]["readOnly"] is True


def test_a_complete_ca_directory_is_only_read(tmp_path: Path) -> None:
    """The Deployment mounts the CA Secret read-only as --ca-dir: starting the CA, the token
    issuer and the webhook certificate from a complete directory writes nothing there."""
    from shoal.cli.installcmd import ca_files
    from shoal.controlplane.security import MeshSecurity
    from shoal.controlplane.webhooks import serving_context

    files = ca_files(tmp_path / "made")
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for name, data in files.items():
        (mounted / name).write_bytes(data)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in mounted.iterdir()}
    security = MeshSecurity(mounted, cert_ttl_s=3600)
    serving_context(security.ca)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in mounted.iterdir()}
    assert after == before
