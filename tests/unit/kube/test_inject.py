"""Sidecar injection: the JSON Patch applied to the pod gives the pod Istio's injector would
make, with `shoal agent` as its proxy (shoal.kube.inject)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest

from shoal.agent.args import add_arguments
from shoal.kube.inject import InjectorSettings, inject_pod, injection_patch, workload_name
from shoal.kube.translate_endpoints import slice_endpoints
from shoal.kube.translate_pod import workload
from unit.kube.pods import deployment_pod


def _patched(pod: dict[str, Any], settings: InjectorSettings | None = None) -> dict[str, Any]:
    result = injection_patch(pod, settings)
    assert result.operations, "an injectable pod must get a patch"
    before = copy.deepcopy(pod)
    before["metadata"].pop("managedFields", None)
    out: dict[str, Any] = jsonpatch.apply_patch(before, result.operations)
    return out


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def _expand(args: list[str], env: dict[str, str]) -> list[str]:
    # what the kubelet does with $(VAR) in args
    out = []
    for arg in args:
        expanded = arg
        for k, v in env.items():
            expanded = expanded.replace(f"$({k})", v)
        out.append(expanded)
    return out


def test_patch_adds_agent_labels_annotations_and_volumes() -> None:
    settings = InjectorSettings(image="registry.example/shoal:9", xds_address="cp.mesh:15012")
    pod = _patched(deployment_pod(), settings)
    meta, spec = pod["metadata"], pod["spec"]

    # labels: Istio's, the user's kept
    assert meta["labels"]["security.istio.io/tlsMode"] == "istio"
    assert meta["labels"]["service.istio.io/canonical-name"] == "reviews"
    assert meta["labels"]["service.istio.io/canonical-revision"] == "v1"
    assert meta["labels"]["app"] == "reviews"

    # annotations
    status = json.loads(meta["annotations"]["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"]
    assert status["volumes"] == ["istio-envoy", "istio-podinfo", "istio-token", "istiod-ca-cert"]
    assert status["revision"] == "default"
    assert meta["annotations"]["istio.io/rev"] == "default"
    assert meta["annotations"]["kubectl.kubernetes.io/default-container"] == "reviews"
    assert meta["annotations"]["sidecar.istio.io/interceptionMode"] == "NONE"
    assert meta["annotations"]["shoal.dev/inbound-port"] == "15006"
    assert "managedFields" not in meta

    # the agent container
    # first, its postStart hook holding the app until it is ready
    assert [c["name"] for c in spec["containers"]] == ["istio-proxy", "reviews"]
    proxy = _container(pod, "istio-proxy")
    assert proxy["lifecycle"]["postStart"]["exec"]["command"] == [
        "python", "-m", "shoal.cli.agentwait",
        "--url", "http://127.0.0.1:15021/healthz/ready", "--timeout", "60",
    ]  # fmt: skip
    assert proxy["image"] == "registry.example/shoal:9"
    assert proxy["command"] == ["shoal"]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    assert proxy["securityContext"]["runAsUser"] == 1337
    assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in proxy["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["INSTANCE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["SERVICE_ACCOUNT"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "spec.serviceAccountName"
    )
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert mounts["istio-token"] == "/var/run/secrets/tokens"
    assert mounts["istiod-ca-cert"] == "/var/run/secrets/istio"

    # volumes: the pod's own kept, the token audience-bound, the root from the ConfigMap
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "tmp" in volumes
    assert volumes["istio-envoy"]["emptyDir"] == {"medium": "Memory"}
    (source,) = volumes["istio-token"]["projected"]["sources"]
    assert source["serviceAccountToken"] == {
        "audience": "istio-ca",
        "expirationSeconds": 43200,
        "path": "istio-token",
    }
    assert volumes["istiod-ca-cert"]["configMap"] == {"name": "istio-ca-root-cert"}

    # the app reaches other services through its sidecar; its own env is kept
    app_env = {e["name"]: e.get("value") for e in _container(pod, "reviews")["env"]}
    assert app_env["HTTP_PROXY"] == "http://127.0.0.1:15001"
    assert app_env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    assert app_env["LOG_DIR"] == "/tmp/logs"


def test_agent_args_are_what_shoal_agent_parses() -> None:
    """The injected command line is accepted by `shoal agent`'s own parser and names the
    pod's identity (after the kubelet expands the downward-API variables)."""
    import argparse

    pod = _patched(deployment_pod())
    proxy = _container(pod, "istio-proxy")
    assert proxy["args"][0] == "agent"
    argv = _expand(
        proxy["args"][1:],
        {
            "POD_NAME": "reviews-v1-7d4b9c6f5-abcde",
            "POD_NAMESPACE": "shop",
            "SERVICE_ACCOUNT": "bookinfo-reviews",
            "INSTANCE_IP": "10.1.0.5",
        },
    )
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(argv)
    assert (args.name, args.namespace, args.service_account) == (
        "reviews-v1-7d4b9c6f5-abcde",
        "shop",
        "bookinfo-reviews",
    )
    assert args.workload == "reviews-v1"
    assert args.ip == "10.1.0.5"
    assert args.xds_address == "shoal-control-plane.shoal-system.svc:15012"
    assert (args.outbound_port, args.inbound_port, args.app_port) == (15001, 15006, 9080)
    assert (args.health_port, args.health_host) == (15021, "0.0.0.0")
    assert args.token_file == "/var/run/secrets/tokens/istio-token"
    assert args.ca_root == "/var/run/secrets/istio/root-cert.pem"
    assert args.labels["security.istio.io/tlsMode"] == "istio"
    assert args.labels["version"] == "v1"


def test_reinjection_is_a_no_op_and_overrides_apply() -> None:
    once = inject_pod(deployment_pod()).pod
    assert injection_patch(once).operations == []

    custom = deployment_pod(
        annotations={
            "sidecar.istio.io/proxyImage": "mine/shoal:dev",
            "sidecar.istio.io/interceptionMode": "REDIRECT",
            "shoal.dev/app-port": "8080",
        },
        labels={"app.kubernetes.io/name": "reviews-app", "app.kubernetes.io/version": "2.1"},
    )
    result = injection_patch(custom)
    assert result.warnings and "interception mode NONE" in result.warnings[0]
    before = copy.deepcopy(custom)
    before["metadata"].pop("managedFields")
    pod = jsonpatch.apply_patch(before, result.operations)
    proxy = _container(pod, "istio-proxy")
    assert proxy["image"] == "mine/shoal:dev"
    assert proxy["args"][proxy["args"].index("--app-port") + 1] == "8080"
    assert pod["metadata"]["labels"]["service.istio.io/canonical-name"] == "reviews-app"
    assert pod["metadata"]["labels"]["service.istio.io/canonical-revision"] == "2.1"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"generateName": "reviews-v1-7d4b9c6f5-", "labels": {"pod-template-hash": "7d4b9c6f5"}},
         "reviews-v1"),
        ({"generateName": "db-"}, "db"),
        ({"name": "standalone"}, "standalone"),
    ],
)  # fmt: skip
def test_workload_name(meta: dict[str, Any], expected: str) -> None:
    assert workload_name({"metadata": meta}) == expected


def test_injected_pod_is_reached_through_its_sidecar() -> None:
    """The injected pod, once running, is an endpoint on the sidecar's inbound port with
    mTLS (its tlsMode label): translation and injection agree."""
    pod = _patched(deployment_pod())
    pod["metadata"]["name"] = "reviews-v1-7d4b9c6f5-abcde"
    pod["status"] = {"podIP": "10.1.0.5", "conditions": [{"type": "Ready", "status": "True"}]}
    w = workload(pod)
    assert w.inbound_port == 15006
    part = slice_endpoints(
        {
            "metadata": {"namespace": "shop", "labels": {"kubernetes.io/service-name": "reviews"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9080}],
            "endpoints": [
                {
                    "addresses": ["10.1.0.5"],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "namespace": "shop", "name": w.name},
                }
            ],
        },
        {("shop", w.name): w},
    )
    (ep,) = part.endpoints
    assert dict(ep.ports) == {"http": 15006}
    assert ep.tls_mode == "istio"


def test_istio_proxy_annotations_override_the_sidecar() -> None:
    pod = deployment_pod(
        annotations={
            "proxy.istio.io/config": "concurrency: 2\nterminationDrainDuration: 7s\n"
            "proxyStatsMatcher: {inclusionPrefixes: [upstream_rq]}\n",
            "sidecar.istio.io/proxyCPU": "250m",
            "sidecar.istio.io/proxyMemoryLimit": "1Gi",
            "sidecar.istio.io/logLevel": "debug",
            "status.sidecar.istio.io/port": "15999",
        }
    )
    result = injection_patch(pod)
    before = copy.deepcopy(pod)
    before["metadata"].pop("managedFields")
    proxy = _container(jsonpatch.apply_patch(before, result.operations), "istio-proxy")
    args = proxy["args"]

    def value(flag: str) -> str:
        return str(args[args.index(flag) + 1])

    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(args[1:])  # shoal agent accepts every override
    assert (parsed.concurrency, parsed.drain_seconds, parsed.envoy_log_level) == (2, 7.0, "debug")
    assert (value("--concurrency"), value("--drain-seconds")) == ("2", "7")
    assert value("--envoy-log-level") == "debug"
    assert value("--health-port") == "15999"
    assert proxy["readinessProbe"]["httpGet"]["port"] == 15999
    assert proxy["resources"] == {
        "requests": {"cpu": "250m", "memory": "128Mi"},
        "limits": {"memory": "1Gi"},
    }
    # valid Istio the agent does not act on is named, not silently dropped
    assert result.warnings == (
        "proxy.istio.io/config field 'proxyStatsMatcher' is not supported by shoal; ignored",
    )
    # the hold waits on the health port the pod asked for
    assert "--url http://127.0.0.1:15999/healthz/ready" in " ".join(
        proxy["lifecycle"]["postStart"]["exec"]["command"]
    )


def test_unusable_overrides_warn_and_the_pod_is_still_injected() -> None:
    pod = deployment_pod(
        annotations={
            "proxy.istio.io/config": "concurrency: many",
            "sidecar.istio.io/logLevel": "loud",
            "status.sidecar.istio.io/port": "0",
        }
    )
    result = injection_patch(pod)
    assert len(result.warnings) == 3
    assert "concurrency must be a positive integer" in result.warnings[0]
    assert "not an Envoy log level" in result.warnings[1]
    # without a health endpoint there is nothing to wait on: the app is not held
    assert "the application is not held" in result.warnings[2]
    before = copy.deepcopy(pod)
    before["metadata"].pop("managedFields")
    proxy = _container(jsonpatch.apply_patch(before, result.operations), "istio-proxy")
    assert "readinessProbe" not in proxy  # health disabled by status port 0
    assert "lifecycle" not in proxy
    assert proxy["args"][proxy["args"].index("--health-port") + 1] == "0"
    assert "--concurrency" not in proxy["args"]


@pytest.mark.parametrize(
    ("annotation", "settings", "held"),
    [
        ("holdApplicationUntilProxyStarts: false", InjectorSettings(), False),
        (None, InjectorSettings(hold_application=False), False),
        ("holdApplicationUntilProxyStarts: true", InjectorSettings(hold_application=False), True),
    ],
)
def test_holding_the_application_can_be_turned_off(
    annotation: str | None, settings: InjectorSettings, held: bool
) -> None:
    annotations = {"proxy.istio.io/config": annotation} if annotation else {}
    result = injection_patch(deployment_pod(annotations=annotations), settings)
    assert result.warnings == ()
    pod = _patched(deployment_pod(annotations=annotations), settings)
    names = [c["name"] for c in pod["spec"]["containers"]]
    proxy = _container(pod, "istio-proxy")
    if held:
        assert names == ["istio-proxy", "reviews"] and "lifecycle" in proxy
    else:  # Istio's default place: last, and nothing waits
        assert names == ["reviews", "istio-proxy"] and "lifecycle" not in proxy


def test_a_hold_that_is_not_a_boolean_is_refused_with_a_warning() -> None:
    result = injection_patch(
        deployment_pod(annotations={"proxy.istio.io/config": "holdApplicationUntilProxyStarts: 1"})
    )
    assert result.warnings == (
        "proxy.istio.io/config holdApplicationUntilProxyStarts must be true or false; ignored",
    )
