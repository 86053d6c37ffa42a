"""The agent's bootstrap carries the DESIGN.md node contract, and Envoy accepts it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from shoal.agent.bootstrap import SidecarIdentity, sidecar_bootstrap
from shoal.agent.process import find_envoy
from shoal.agent.securebootstrap import secure
from shoal.api.re2 import REGEX_PROGRAM_SIZE_LIMIT, RUNTIME_KEY
from shoal.model import parse_proxy

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "bootstrap" / "sidecar-none.yaml"

IDENT = SidecarIdentity(
    name="reviews-v1-0",
    namespace="shop",
    workload="reviews-v1",
    labels={"app": "reviews", "version": "v1"},
    service_account="reviews",
    outbound_port=15001,
    inbound_port=15006,
    app_port=8080,
)


def test_node_parses_back_to_the_same_proxy() -> None:
    boot = sidecar_bootstrap(IDENT, xds_host="127.0.0.1", xds_port=15010, admin_port=15000)
    node = boot["node"]
    assert isinstance(node, dict)
    proxy = parse_proxy(node["id"], node["metadata"])
    assert proxy.node_id == "sidecar~127.0.0.1~reviews-v1-0.shop~shop.svc.cluster.local"
    assert (proxy.namespace, proxy.workload_name, proxy.service_account) == (
        "shop",
        "reviews-v1",
        "reviews",
    )
    assert dict(proxy.labels) == {"app": "reviews", "version": "v1"}
    assert proxy.interception_mode == "NONE"
    assert (proxy.outbound_port, proxy.inbound_port, proxy.app_port, proxy.admin_port) == (
        15001,
        15006,
        8080,
        15000,
    )


def test_envoy_validates_the_bootstrap_for_both_api_types(tmp_path: Path) -> None:
    for api_type in ("GRPC", "DELTA_GRPC"):
        path = tmp_path / f"{api_type}.json"
        boot = sidecar_bootstrap(
            IDENT,
            xds_host="127.0.0.1",
            xds_port=15010,
            admin_port=15000,
            api_type=api_type,
            more_xds=[("127.0.0.1", 15011)] if api_type == "GRPC" else (),
        )
        path.write_text(json.dumps(boot))
        proc = subprocess.run(
            [find_envoy(), "--mode", "validate", "-c", str(path), "-l", "error"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_several_control_plane_replicas_are_endpoints_of_the_one_xds_cluster() -> None:
    boot = sidecar_bootstrap(
        IDENT,
        xds_host="10.0.0.1",
        xds_port=15012,
        admin_port=15000,
        more_xds=[("10.0.0.2", 15012), ("10.0.0.3", 15012)],
    )
    static = boot["static_resources"]
    assert isinstance(static, dict)
    (cluster,) = static["clusters"]
    (locality,) = cluster["load_assignment"]["endpoints"]
    addresses = [e["endpoint"]["address"]["socket_address"] for e in locality["lb_endpoints"]]
    assert [a["address"] for a in addresses] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def _ads_services(boot: dict[str, object]) -> list[dict[str, object]]:
    dynamic = boot["dynamic_resources"]
    assert isinstance(dynamic, dict)
    services: list[dict[str, object]] = dynamic["ads_config"]["grpc_services"]
    return services


def test_every_bootstrap_sets_the_ads_reconnect_backoff_where_envoy_reads_it() -> None:
    # Envoy takes the xDS reconnect backoff from envoy_grpc.retry_policy; one beside
    # envoy_grpc (GrpcService.retry_policy) is accepted and ignored for ADS.
    plain = sidecar_bootstrap(IDENT, xds_host="127.0.0.1", xds_port=15010, admin_port=15000)
    boots = {
        "agent": plain,
        "agent --secure": secure(plain, sds_socket="/tmp/sds.sock", token="t"),
        "example": yaml.safe_load(EXAMPLE.read_text()),
    }
    for name, boot in boots.items():
        (service,) = _ads_services(boot)
        assert "retry_policy" not in service, name
        envoy_grpc = service["envoy_grpc"]
        assert isinstance(envoy_grpc, dict)
        back_off = envoy_grpc["retry_policy"]["retry_back_off"]
        assert back_off == {"base_interval": "0.1s", "max_interval": "0.5s"}, name


def test_envoy_validates_the_example_bootstrap() -> None:
    proc = subprocess.run(
        [find_envoy(), "--mode", "validate", "-c", str(EXAMPLE), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_bootstrap_raises_the_regex_limit_validation_uses() -> None:
    # shoal.api refuses regexes over REGEX_PROGRAM_SIZE_LIMIT; Envoy's default is only 100
    boot = sidecar_bootstrap(IDENT, xds_host="127.0.0.1", xds_port=15010, admin_port=15000)
    example = yaml.safe_load(EXAMPLE.read_text())
    for runtime in (boot["layered_runtime"], example["layered_runtime"]):
        assert isinstance(runtime, dict)
        (static,) = [
            layer["static_layer"] for layer in runtime["layers"] if "static_layer" in layer
        ]
        assert static[RUNTIME_KEY] == REGEX_PROGRAM_SIZE_LIMIT
