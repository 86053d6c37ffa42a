"""Istio's standard metrics from real sidecars under `shoal up --secure`.

Known traffic (40 answered 200 after 30 ms, 10 answered 500) from frontend to reviews; each
sidecar's metrics port then serves `istio_*` series with Istio's names, every label Kiali
groups by, identities from the verified certificates, and Istio's histogram buckets. A caller
that forges the identity headers changes nothing: its own sidecar overwrites them, and a
plaintext caller's are ignored.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.configdir import ConfigDir
from harness.telemetrymesh import MESH, REVIEWS, Sample, parse, scrape, select, send, total
from harness.up import ShoalUp, get_via_proxy
from harness.wait import wait_until
from shoal.generate.telemetry_accesslog import JSON_FIELDS
from shoal.generate.telemetry_labels import HTTP_LABELS

pytestmark = pytest.mark.envoy

SHOAL = Path(sys.executable).parent / "shoal"

FRONTEND_ID = "spiffe://cluster.local/ns/default/sa/frontend"
REVIEWS_ID = "spiffe://cluster.local/ns/default/sa/reviews"
# Envoy's default histogram buckets, which are Istio's
BUCKETS = ["0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
           "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"]  # fmt: skip


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalUp]:
    tmp = tmp_path_factory.mktemp("telemetry")
    folder = ConfigDir(tmp / "mesh")
    folder.write("mesh.yaml", MESH)
    extra = ["--secure", "--ca-dir", str(tmp / "ca"), "--no-status"]
    up = ShoalUp(folder.path, tmp, name="telemetry-up", extra_args=extra)
    up.start()
    try:
        up.wait_ready(2)
        send(up, ok=40, failed=10, headers={"x-shoal-peer-workload": "forged"})
        yield up
    finally:
        print(up.describe())
        up.stop()


def _metrics(up: ShoalUp, replica: str, until: int) -> list[Sample]:
    """The replica's series once its histograms (flushed every 5 s) have `until` requests."""
    port = up.replica(replica)["ports"]["metrics"]

    def flushed() -> list[Sample] | None:
        samples = parse(scrape(port))
        count = total(samples, "istio_request_duration_milliseconds_count")
        return samples if count >= until else None

    return wait_until(flushed, 15, interval=0.5, what=f"{replica}: {until} requests flushed")


def test_syncz_names_every_proxys_metrics_port(mesh: ShoalUp) -> None:
    ports = {r["replica"]: r["ports"]["metrics"] for r in mesh.workloads()}
    by_node = {p["node"].split("~")[2].split(".")[0]: p["prometheus_port"] for p in mesh.syncz()}
    assert by_node == ports


def test_client_side_series_have_istios_names_labels_and_identities(mesh: ShoalUp) -> None:
    samples = _metrics(mesh, "frontend-0", 50)
    requests = select(samples, "istio_requests_total", reporter="source")
    assert requests, samples
    for s in requests:
        assert set(s.labels) == set(HTTP_LABELS), s.labels
    expected = {
        "source_workload": "frontend",
        "source_workload_namespace": "default",
        "source_principal": FRONTEND_ID,
        "source_app": "frontend",
        "source_version": "v2",
        "source_canonical_service": "frontend",
        "source_canonical_revision": "v2",
        "destination_workload": "reviews",
        "destination_workload_namespace": "default",
        "destination_principal": REVIEWS_ID,
        "destination_app": "reviews",
        "destination_version": "v1",
        "destination_service": REVIEWS,
        "destination_service_name": "reviews",
        "destination_service_namespace": "default",
        "destination_canonical_service": "reviews",
        "destination_canonical_revision": "v1",
        "request_protocol": "http",
        "grpc_response_status": "",
        "response_flags": "-",
        "connection_security_policy": "unknown",
    }
    assert total(samples, "istio_requests_total", **expected, response_code="200") == 40
    assert total(samples, "istio_requests_total", **expected, response_code="500") == 10
    # the answers took 30 ms or more: nothing in the buckets below, Istio's bucket bounds
    ok = {"reporter": "source", "response_code": "200"}
    buckets = select(samples, "istio_request_duration_milliseconds_bucket", **ok)
    assert [b.labels["le"] for b in buckets] == BUCKETS
    by_le = {b.labels["le"]: b.value for b in buckets}
    assert by_le["25"] == 0 and by_le["+Inf"] == 40
    assert total(samples, "istio_request_duration_milliseconds_sum", **ok) >= 40 * 30
    assert total(samples, "istio_request_bytes_count", **ok) == 40
    assert total(samples, "istio_response_bytes_sum", **ok) > 40 * 100


def test_server_side_series_name_the_caller_from_its_certificate(mesh: ShoalUp) -> None:
    samples = _metrics(mesh, "reviews-0", 50)
    expected = {
        "reporter": "destination",
        "source_workload": "frontend",  # not "forged": the caller's sidecar overwrote it
        "source_workload_namespace": "default",
        "source_principal": FRONTEND_ID,
        "source_app": "frontend",
        "source_version": "v2",
        "destination_workload": "reviews",
        "destination_principal": REVIEWS_ID,
        "destination_service": REVIEWS,
        "destination_service_name": "reviews",
        "connection_security_policy": "mutual_tls",
    }
    assert total(samples, "istio_requests_total", **expected, response_code="200") == 40
    assert total(samples, "istio_requests_total", **expected, response_code="500") == 10
    for s in select(samples, "istio_requests_total"):
        assert set(s.labels) == set(HTTP_LABELS), s.labels


def test_a_plaintext_caller_cannot_claim_an_identity(mesh: ShoalUp) -> None:
    inbound = mesh.replica("reviews-0")["ports"]["inbound"]
    conn = http.client.HTTPConnection("127.0.0.1", inbound, timeout=5)
    conn.request("GET", "/", headers={"Host": REVIEWS, "x-shoal-peer-workload": "frontend"})
    assert conn.getresponse().status == 200
    conn.close()
    samples = _metrics(mesh, "reviews-0", 51)
    plain = {"reporter": "destination", "connection_security_policy": "none"}
    assert total(samples, "istio_requests_total", **plain) == 1
    (series,) = select(samples, "istio_requests_total", **plain)
    assert series.labels["source_workload"] == "unknown"
    assert series.labels["source_principal"] == "unknown"
    assert series.labels["destination_principal"] == "unknown"


def test_json_access_logs_in_the_agents_output(mesh: ShoalUp) -> None:
    request_id = f"telemetry-{uuid.uuid4()}"
    outbound = mesh.replica("frontend-0")["ports"]["outbound"]
    status, _ = get_via_proxy(
        outbound, f"http://{REVIEWS}/logged", headers={"x-request-id": request_id}
    )
    assert status == 200

    def logged() -> list[tuple[str, dict[str, Any]]] | None:
        found = [
            (line.split("]", 1)[0].lstrip("["), json.loads(line[line.index("{") :]))
            for line in mesh.log_text().splitlines()
            if request_id in line
        ]
        return found if len(found) == 2 else None

    lines = wait_until(logged, 10, what="an access log line from each sidecar")
    by_sidecar = dict(lines)
    assert set(by_sidecar) == {"frontend-0/sidecar", "reviews-0/sidecar"}
    for entry in by_sidecar.values():
        assert entry["request_id"] == request_id
        assert (entry["method"], entry["path"], entry["response_code"]) == ("GET", "/logged", 200)
        assert set(entry) == set(JSON_FIELDS)
    # the caller's line names the cluster it chose, the callee's its inbound cluster
    assert by_sidecar["frontend-0/sidecar"]["upstream_cluster"].endswith(f"||{REVIEWS}")
    assert by_sidecar["reviews-0/sidecar"]["upstream_cluster"].startswith("inbound|")


# -- the CLI reads the same series (these run last: they add traffic) -------------------------


def _shoal(up: ShoalUp, *args: str) -> subprocess.Popen[str]:
    argv = [str(SHOAL), *args, "--control-plane", up.admin_url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(out: str) -> dict[str, list[str]]:
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]
    return {line[0]: line for line in lines}


def test_shoal_stat_shows_the_golden_signals_of_the_window(mesh: ShoalUp) -> None:
    # both commands take their first scrape, then traffic happens inside their window
    by_workload = _shoal(mesh, "stat", "-n", "default", "--window", "10s")
    by_service = _shoal(mesh, "stat", "svc/reviews", "-n", "default", "--window", "10s")
    for proc in (by_workload, by_service):  # both took their first scrape
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("measuring "), proc.stderr.read()
    send(mesh, ok=24, failed=6)
    out, err = by_workload.communicate(timeout=30)
    assert by_workload.returncode == 0, err
    rows = _rows(out)
    assert rows["NAME"] == [
        "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
        "TCP_CONN",
    ]  # fmt: skip
    _, meshed, success, rps, p50, _p95, p99, tcp = rows["reviews"]
    assert (meshed, success, tcp) == ("1/1", "80.00%", "-"), out + err
    assert rps == f"{30 / 10:.1f}rps"
    assert 25 <= float(p50.removesuffix("ms")) <= float(p99.removesuffix("ms"))
    # the frontend served nothing in the window: idle, but listed and meshed
    assert rows["frontend"][1:4] == ["1/1", "-", "-"]
    out, err = by_service.communicate(timeout=30)
    assert by_service.returncode == 0, err
    svc = _rows(out)["reviews"]
    assert svc[1:4] == ["-", "80.00%", f"{30 / 10:.1f}rps"]


def test_shoal_edges_names_both_identities(mesh: ShoalUp) -> None:
    proc = _shoal(mesh, "edges")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rows = _rows(out)
    assert rows["SRC"] == ["SRC", "DST", "SRC_NS", "DST_NS", "SECURED", "CLIENT_ID", "SERVER_ID"]
    assert rows["frontend"] == [
        "frontend", "reviews", "default", "default", "√", FRONTEND_ID, REVIEWS_ID
    ]  # fmt: skip
