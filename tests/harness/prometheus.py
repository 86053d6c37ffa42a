"""A real Prometheus server (Debian's `prometheus` binary) for the telemetry tests.

Started from the test with its own config, a temporary storage directory and a free port on
127.0.0.1 (never the Debian service); stopped by its pid. It finds the proxies through the
control plane's `http_sd` endpoint, exactly as a user's Prometheus would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.ports import free_port
from harness.wait import wait_until

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def config(admin_url: str, interval: str = "1s") -> str:
    host = urllib.parse.urlsplit(admin_url).netloc
    return f"""\
global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}
scrape_configs:
  - job_name: shoal-proxies
    http_sd_configs: [{{url: "{admin_url}/debug/prometheus_sd", refresh_interval: 1s}}]
  - job_name: shoal-control-plane
    static_configs: [{{targets: ["{host}"]}}]
"""


class Prometheus:
    def __init__(self, workdir: Path, config_text: str) -> None:
        if not Path(BINARY).exists():
            pytest.fail("the prometheus binary is missing: .ci/run installs Debian's prometheus")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(config_text)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        argv = [
            BINARY,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        wait_until(self._ready, 30, interval=0.2, what="prometheus ready", describe=self.tail)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.tail()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        """The single value of `expr` (None when the vector is empty)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
