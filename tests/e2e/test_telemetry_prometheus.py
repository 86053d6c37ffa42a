"""The mesh's metrics through a real Prometheus server, queried as Istio's dashboards do.

Prometheus (Debian's binary, its own config, temporary storage, a free port) finds every proxy
through the control plane's `http_sd` endpoint and scrapes each once a second. The test sends
known traffic from frontend to reviews (20 answered 200 after 30 ms, 5 answered 500) and
known bytes through a TCP gateway, then checks the PromQL of Istio's standard Grafana
dashboards against what was sent: request rate by destination service, success rate, p99
from the histogram, TCP bytes; and the control plane's own series.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from harness.configdir import ConfigDir
from harness.ports import free_port
from harness.prometheus import Prometheus, config
from harness.telemetrymesh import MESH, REVIEWS, send
from harness.up import ShoalUp
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _gateway(port: int) -> str:
    return f"""\
---
apiVersion: shoal.dev/v1alpha1
kind: LocalGateway
metadata: {{name: tcp-gateway, namespace: default}}
spec:
  labels: {{istio: tcpgateway}}
  serviceAccount: tcp-gateway
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-gateway, namespace: default}}
spec:
  selector: {{istio: tcpgateway}}
  servers:
  - port: {{number: {port}, name: tcp, protocol: TCP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews-tcp, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [tcp-gateway]
  tcp:
  - route: [{{destination: {{host: reviews, port: {{number: 80}}}}}}]
"""


@pytest.fixture(scope="module")
def tcp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, tcp_port: int) -> Iterator[ShoalUp]:
    tmp = tmp_path_factory.mktemp("prom-mesh")
    folder = ConfigDir(tmp / "mesh")
    folder.write("mesh.yaml", MESH + _gateway(tcp_port))
    up = ShoalUp(
        folder.path, tmp, name="prom-up", extra_args=["--secure", "--ca-dir", str(tmp / "ca")]
    )
    up.start()
    try:
        up.wait_ready(2, proxies=3)
        yield up
    finally:
        print(up.describe())
        up.stop()


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory, mesh: ShoalUp) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), config(mesh.admin_url))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _tcp_exchange(port: int) -> tuple[int, int]:
    """One HTTP/1.1 request over a raw TCP connection through the gateway: (sent, received)."""
    request = f"GET / HTTP/1.1\r\nHost: {REVIEWS}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received
    return len(request), len(received)


def test_dashboard_queries_answer_what_was_sent(
    mesh: ShoalUp, prom: Prometheus, tcp_port: int
) -> None:
    # every proxy is discovered and scraped
    def all_up() -> bool:
        targets = prom.api("targets")["activeTargets"]
        proxies = [t for t in targets if t["labels"]["job"] == "shoal-proxies"]
        return len(proxies) == 3 and all(t["health"] == "up" for t in targets)

    wait_until(all_up, 30, interval=0.5, what="prometheus scraping 3 proxies and the CP")
    # a first round so the series exist before the measured one (a counter's first sample
    # starts it: rate() counts only what follows); large enough that rate()'s extrapolation is
    # not cut short at "where the counter would have been zero", alike for both series
    send(mesh, ok=10, failed=10)
    dest = f'reporter="destination",destination_service="{REVIEWS}",source_workload="frontend"'
    wait_until(
        lambda: prom.scalar(f"sum(istio_requests_total{{{dest}}})") == 20, 30, what="first round"
    )
    wait_until(
        lambda: prom.scalar(f"sum(istio_request_duration_milliseconds_count{{{dest}}})") == 20,
        30,
        what="first round's histograms",
    )
    # from here on both series of the first round exist: windows starting later see them from
    # the same scrapes, so rate() extrapolates numerator and denominator alike
    both_exist = time.time()
    time.sleep(3)  # scrapes of the quiet time between the rounds: the window's first samples
    sent, received = _tcp_exchange(tcp_port)
    send(mesh, ok=20, failed=5)
    wait_until(
        lambda: prom.scalar(f"sum(istio_request_duration_milliseconds_count{{{dest}}})") == 45,
        30,
        what="measured round scraped",
    )
    # request volume by destination service (Istio Mesh dashboard), over the whole run: the
    # frontend's 45 and the one HTTP request that crossed the TCP gateway
    by_service = prom.query(
        'sum(istio_requests_total{reporter="destination"}) by (destination_service)'
    )
    assert {r["metric"]["destination_service"]: float(r["value"][1]) for r in by_service} == {
        REVIEWS: 46
    }
    rate = prom.query(
        'round(sum(rate(istio_requests_total{reporter="destination"}[1m]))'
        " by (destination_service), 0.001)"
    )
    assert [r["metric"]["destination_service"] for r in rate] == [REVIEWS]
    assert float(rate[0]["value"][1]) > 0
    # success rate (non-5xx) over the measured round: 20 of 25, exactly
    window = f"{int(time.time() - both_exist)}s"
    success = prom.scalar(
        f'sum(rate(istio_requests_total{{{dest},response_code!~"5.*"}}[{window}]))'
        f" / sum(rate(istio_requests_total{{{dest}}}[{window}]))"
    )
    assert success == pytest.approx(0.8)
    # the same from the client side, and from the caller's identity
    src = f'reporter="source",source_workload="frontend",destination_service="{REVIEWS}"'
    assert prom.scalar(f"sum(istio_requests_total{{{src}}})") == 45
    # p99 from the histogram: every answer took 30 ms or more (buckets 25..50 or above)
    p99 = prom.scalar(
        "histogram_quantile(0.99, sum(rate("
        f"istio_request_duration_milliseconds_bucket{{{dest}}}[1m])) by (le))"
    )
    assert p99 is not None and 25 < p99 <= 1000
    p50_all = prom.scalar(
        "histogram_quantile(0.50, sum("
        f"istio_request_duration_milliseconds_bucket{{{dest}}}) by (le))"
    )
    assert p50_all is not None and p50_all > 25
    # TCP bytes through the gateway (reporter source), exactly what crossed the socket
    tcp = 'reporter="source",source_workload="tcp-gateway"'
    wait_until(
        lambda: prom.scalar(f"sum(istio_tcp_connections_closed_total{{{tcp}}})") == 1,
        30,
        what="tcp connection reported",
    )
    assert prom.scalar(f"sum(istio_tcp_received_bytes_total{{{tcp}}})") == sent
    assert prom.scalar(f"sum(istio_tcp_sent_bytes_total{{{tcp}}})") == received
    assert prom.scalar(f"sum(istio_tcp_connections_opened_total{{{tcp}}})") == 1
    tcp_by_service = prom.query(
        f"sum(istio_tcp_sent_bytes_total{{{tcp}}}) by (destination_service, destination_workload)"
    )
    assert [r["metric"] for r in tcp_by_service] == [
        {"destination_service": REVIEWS, "destination_workload": "reviews"}
    ]


def test_control_plane_series(mesh: ShoalUp, prom: Prometheus) -> None:
    cp = 'job="shoal-control-plane"'
    wait_until(
        lambda: (prom.scalar(f"sum(shoal_xds_pushes_total{{{cp}}})") or 0) > 0, 30, what="pushes"
    )
    assert (prom.scalar(f"shoal_ca_certificates_issued_total{{{cp}}}") or 0) >= 3
    assert prom.scalar(f"sum(shoal_xds_nacks_total{{{cp}}})") in (None, 0.0)
    assert prom.query(f"shoal_config_errors{{{cp}}}") == []
