"""Istio's default text access log, written by a real Envoy to a file (the generator's file
logger, generate/telemetry_accesslog.py): one line per request, field for field."""

from __future__ import annotations

import re
from pathlib import Path

from harness.wait import wait_until
from shoal.generate.telemetry_accesslog import file_access_logs
from shoal.generate.telemetry_policy import CLIENT, AccessLogPolicy

from .envoyhcm import envoy_with, get


def test_text_format_to_a_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    logs = file_access_logs(AccessLogPolicy(client=str(log), encoding="TEXT"), CLIENT)
    with envoy_with(tmp_path, logs) as (_, port, _):
        get(f"http://127.0.0.1:{port}/hello?x=1", {"x-request-id": "req-1", "user-agent": "t/1"})
        line = wait_until(
            lambda: log.exists() and log.read_text().strip(), 15, what="an access log line"
        )
    assert isinstance(line, str) and len(line.splitlines()) == 1, line
    # [start] "method path protocol" code flags details termination "failure" bytes in, out,
    # duration, upstream time, "xff" "agent" "request id" "authority" "upstream host" ...
    expected = (
        r'^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] "GET /hello\?x=1 HTTP/1\.1" 200 - direct_response - "-" '
        rf'0 0 \d+ - "-" "t/1" "req-1" "127\.0\.0\.1:{port}" "-" - - 127\.0\.0\.1:{port} '
        r"127\.0\.0\.1:\d+ - -$"
    )
    assert re.match(expected, line), line
