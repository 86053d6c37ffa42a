"""`shoal bootstrap grpc`: the gRPC xDS bootstrap names the control plane and a node the
control plane takes for a proxyless client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.cli.main import main
from shoal.model import parse_proxy


def test_bootstrap_file_names_the_control_plane_and_a_proxyless_node(tmp_path: Path) -> None:
    out = tmp_path / "grpc-bootstrap.json"
    code = main(
        [
            "bootstrap",
            "grpc",
            "--workload",
            "reviews-client",
            "--namespace",
            "shop",
            "--control-plane",
            "127.0.0.1:15010",
            "--label",
            "version=v2",
            "--service-account",
            "reviews",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    boot = json.loads(out.read_text())
    (server,) = boot["xds_servers"]
    assert server == {
        "server_uri": "127.0.0.1:15010",
        "channel_creds": [{"type": "insecure"}],
        "server_features": ["xds_v3"],
    }
    node = boot["node"]
    assert node["id"] == "sidecar~127.0.0.1~reviews-client.shop~shop.svc.cluster.local"
    proxy = parse_proxy(node["id"], node["metadata"])
    assert proxy.proxyless
    assert (proxy.namespace, proxy.service_account) == ("shop", "reviews")
    assert dict(proxy.labels) == {"version": "v2"}
    assert proxy.workload_name == "reviews-client"


def test_bad_control_plane_address_is_refused_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["bootstrap", "grpc", "--workload", "c", "--control-plane", "localhost"])
    assert code == 2
    assert "must be HOST:PORT" in capsys.readouterr().err


def test_without_output_file_the_bootstrap_goes_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bootstrap", "grpc", "--workload", "c", "--control-plane", "cp:15010"]) == 0
    boot = json.loads(capsys.readouterr().out)
    assert boot["node"]["metadata"]["GENERATOR"] == "grpc"


def test_cert_dir_adds_a_file_watcher_provider_and_marks_the_node_secure(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    argv = ["bootstrap", "grpc", "--workload", "c", "--control-plane", "cp:15010"]
    assert main([*argv, "--cert-dir", str(tmp_path / "certs"), "-o", str(out)]) == 0
    boot = json.loads(out.read_text())
    provider = boot["certificate_providers"]["default"]
    assert provider["plugin_name"] == "file_watcher"
    assert provider["config"]["certificate_file"] == str(tmp_path / "certs" / "cert-chain.pem")
    assert provider["config"]["ca_certificate_file"] == str(tmp_path / "certs" / "root-cert.pem")
    assert parse_proxy(boot["node"]["id"], boot["node"]["metadata"]).secure
