"""A NACK in the dashboard: a real Envoy rejects a cluster, the page shows its error text.

The control plane's test hook pushes one cluster Envoy refuses; the sync panel turns the
proxy's CDS cell into "NACK" with Envoy's own error text beneath (what `/debug/syncz` holds),
and back to synced, the NACK kept as history, once the poison is gone.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from harness.browser import headless_chromium
from harness.mesh import Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def test_the_sync_panel_shows_a_nack_with_envoys_error_text(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 100}, test_hooks=True)
    sidecar = mesh.sidecar(api_type="GRPC")
    mesh.synced()
    with headless_chromium() as page:
        page.get(f"{cp.admin_url}/dashboard/")
        row = f'#sync tr.proxy[data-node="{sidecar.node_id}"]'
        wait_until(
            lambda: "synced" in page.find_element(By.CSS_SELECTOR, row).text,
            20, interval=0.3, what="the proxy's row, synced",
        )  # fmt: skip

        cp.poison()
        nack = wait_until(
            lambda: (cp.proxy(sidecar.node_id) or {}).get("types", {}).get("cds", {}).get("nack"),
            10, what="a CDS NACK in syncz", describe=cp.describe,
        )  # fmt: skip
        detail = f'#sync tr.nack-detail[data-node="{sidecar.node_id}"]'

        def shown() -> str | None:
            cells = page.find_elements(By.CSS_SELECTOR, detail)
            text = cells[0].text if cells else ""
            return text if text.startswith("CDS NACK:") else None

        text = wait_until(shown, 15, interval=0.3, what="the NACK's text under the proxy's row")
        assert nack.strip()[:80] in text, (nack, text)
        assert "NACK" in page.find_element(By.CSS_SELECTOR, row).text

        cp.unpoison()

        def healed() -> bool:
            cells = page.find_elements(By.CSS_SELECTOR, detail)
            return bool(cells) and cells[0].text.startswith("CDS last NACK:")

        wait_until(healed, 20, interval=0.3, what="synced again, the NACK kept as history")
        # the CDS cell: synced again, with the count of NACKs so far beside it
        assert "(1 NACK)" in page.find_element(By.CSS_SELECTOR, row).text
