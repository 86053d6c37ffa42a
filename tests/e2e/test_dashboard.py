"""The web dashboard in a real browser (headless Chromium, Selenium) against the demo.

The demo folder (examples/demo, what `make demo` runs) is copied and run with `shoal up
--secure`; the page is the control plane's own `/dashboard/`. The graph shows the demo's
workloads and the calls between them with a lock (mutual TLS); a workload's page charts its
signals; a bad file appears in the errors panel with file:line and field; a replica that
starts failing every request (500) turns its edge red within 10 s.

`SHOAL_DASHBOARD_SCREENSHOT=docs/dashboard.png` saves the page at the end (the README's
screenshot is made that way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from harness.adminhttp import request
from harness.browser import headless_chromium
from harness.ports import free_port
from harness.up import REPO, VENV_BIN, ShoalUp
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

DEMO = REPO / "examples" / "demo"
WORKLOADS = {"traffic", "frontend", "reviews-v1", "reviews-v2", "ratings"}
# every call the demo makes (reviews-v2 gets 10 % of the reviews traffic)
CALLS = {
    ("traffic", "frontend"),
    ("frontend", "reviews-v1"),
    ("frontend", "reviews-v2"),
    ("frontend", "ratings"),
    ("reviews-v2", "ratings"),
}
BROKEN_FILE = """\
# a weight that is not a number: refused, the rest of the mesh keeps running
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken
  namespace: default
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
      weight: lots
"""
RED = "rgb(220, 38, 38)"  # --failing in dashboard.css

# what the page shows, read from its DOM in one call
READ_GRAPH = """
const out = {nodes: [], edges: []};
for (const n of document.querySelectorAll('#graph g.node')) out.nodes.push(n.dataset.id);
for (const e of document.querySelectorAll('#graph g.edge')) out.edges.push({
  src: e.dataset.src, dst: e.dataset.dst, health: e.dataset.health,
  lock: Boolean(e.querySelector('.lock')), text: e.textContent,
  stroke: getComputedStyle(e.querySelector('path')).stroke});
return out;
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalUp]:
    tmp = tmp_path_factory.mktemp("dashboard")
    folder = tmp / "demo"
    shutil.copytree(DEMO, folder)
    up = ShoalUp(
        folder, tmp, name="dashboard-up", extra_args=["--secure", "--ca-dir", str(tmp / "ca")]
    )
    up.start()
    try:
        up.wait_ready(6, timeout=90)
        yield up
    finally:
        print(up.describe())
        up.stop()


@pytest.fixture(scope="module")
def page(demo: ShoalUp) -> Iterator[webdriver.Chrome]:
    with headless_chromium() as chrome:
        chrome.get(f"{demo.admin_url}/dashboard/")
        yield chrome


def _graph(page: webdriver.Chrome) -> dict[str, Any]:
    data: dict[str, Any] = page.execute_script(READ_GRAPH)
    return data


def _edge(graph: dict[str, Any], src: str, dst: str) -> dict[str, Any] | None:
    for e in graph["edges"]:
        if (e["src"], e["dst"]) == (f"default/{src}", f"default/{dst}"):
            return e  # type: ignore[no-any-return]
    return None


def test_shoal_dashboard_prints_the_url_it_checked(demo: ShoalUp) -> None:
    shoal = str(VENV_BIN / "shoal")
    ok = subprocess.run(
        [shoal, "dashboard", "--no-browser", "--control-plane", demo.admin_url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert (ok.returncode, ok.stdout) == (0, f"{demo.admin_url}/dashboard/\n"), ok.stderr
    dead = f"http://127.0.0.1:{free_port()}"
    gone = subprocess.run(
        [shoal, "dashboard", "--no-browser", "--control-plane", dead],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert gone.returncode == 1 and "cannot reach" in gone.stderr, gone


def test_the_graph_shows_the_demos_workloads_and_calls_with_a_lock(
    page: webdriver.Chrome,
) -> None:
    def complete() -> dict[str, Any] | None:
        g = _graph(page)
        edges = [_edge(g, s, d) for s, d in CALLS]
        ok = all(e is not None and "rps" in e["text"] for e in edges)
        return g if ok and {f"default/{w}" for w in WORKLOADS} <= set(g["nodes"]) else None

    graph = wait_until(
        complete, 60, interval=0.5, what="every workload and call drawn with its rate",
        describe=lambda: json.dumps(_graph(page), indent=1),
    )  # fmt: skip
    for src, dst in CALLS:
        edge = _edge(graph, src, dst)
        assert edge is not None and edge["lock"], f"{src} -> {dst} has no lock: {edge}"
    # the demo answers: the busy calls are green (nothing fails yet)
    main = _edge(graph, "frontend", "ratings")
    assert main is not None and main["health"] in ("ok", "idle"), main
    assert "%" in main["text"] and "p99" in main["text"]


def test_a_workload_page_charts_its_signals_over_time(page: webdriver.Chrome) -> None:
    page.find_element(By.CSS_SELECTOR, '#graph g.node[data-id="default/frontend"]').click()

    def charted() -> bool:
        if not page.current_url.endswith("#/workload/default/frontend"):
            return False
        lines = page.find_elements(By.CSS_SELECTOR, '#charts [data-chart="requests/s"] polyline')
        points = lines[0].get_attribute("points") if lines else ""
        callers = page.find_element(By.ID, "wl-inbound").text
        return len((points or "").split()) >= 2 and "default/traffic" in callers

    wait_until(charted, 30, interval=0.5, what="frontend's page with a chart of 2+ points")
    assert "default/frontend" in page.find_element(By.ID, "wl-title").text
    assert "frontend-0" in page.find_element(By.ID, "wl-sync").text
    page.get(page.current_url.split("#")[0] + "#/")


def test_a_bad_file_appears_in_the_errors_panel_with_file_line_and_field(
    demo: ShoalUp, page: webdriver.Chrome
) -> None:
    assert demo.config_dir is not None
    (demo.config_dir / "broken-routing.yaml").write_text(BROKEN_FILE)

    def listed() -> str | None:
        rows = page.find_elements(By.CSS_SELECTOR, "#errors tr.config-error")
        texts = [r.text for r in rows]
        return next((t for t in texts if "broken-routing.yaml:12" in t), None)

    row = wait_until(listed, 20, interval=0.5, what="the bad file in the errors panel")
    assert "spec.http[0].route[0].weight" in row and "VirtualService" in row, row
    # every proxy still synced: the bad file changed nothing they were sent
    sync = page.find_element(By.ID, "sync").text
    for replica in ("frontend-0", "ratings-0", "ratings-1", "reviews-v1-0", "traffic-0"):
        assert replica in sync
    assert "NACK" not in sync


def test_a_broken_replica_turns_its_edge_red_within_10s(
    demo: ShoalUp, page: webdriver.Chrome
) -> None:
    wait_until(
        lambda: (_edge(_graph(page), "frontend", "ratings") or {}).get("health") == "ok",
        30, interval=0.5, what="frontend -> ratings green before the break",
    )  # fmt: skip
    # every request answers 500 (503 would be retried by the callers' sidecars, as in Istio)
    app = demo.replica("ratings-1")["ports"]["app"]
    knobs = json.dumps({"error_rate": 1.0, "error_code": 500}).encode()
    wait_until(
        lambda: request("POST", f"http://127.0.0.1:{app}/admin/knobs", body=knobs)[0] == 200,
        10, interval=0.2, what="ratings-1 to take its new knobs",
    )  # fmt: skip
    broken = time.monotonic()

    def red() -> dict[str, Any] | None:
        edge = _edge(_graph(page), "frontend", "ratings")
        return edge if edge and edge["health"] == "failing" and edge["stroke"] == RED else None

    edge = wait_until(
        red, 30, interval=0.2, what="frontend -> ratings red",
        describe=lambda: json.dumps(_edge(_graph(page), "frontend", "ratings")),
    )  # fmt: skip
    took = time.monotonic() - broken
    print(f"frontend -> ratings turned red {took:.1f} s after ratings-1 broke: {edge['text']}")
    assert took <= 10, f"the edge turned red only after {took:.1f} s"
    shot = os.environ.get("SHOAL_DASHBOARD_SCREENSHOT")
    if shot:
        page.save_screenshot(str(Path(shot).resolve()))
