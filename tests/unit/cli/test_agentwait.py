"""`shoal agent-wait` / `python -m shoal.cli.agentwait`: the postStart hook that holds a pod's
application until its agent is ready (shoal.cli.agentwait), against a real HTTP server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.ports import free_port
from shoal.cli.agentwait import main
from shoal.kube.inject import InjectorSettings, wait_command


class _Agent(BaseHTTPRequestHandler):
    """/healthz/ready: 503 for the first `not_ready` requests, then 200."""

    not_ready = 3
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        ready = type(self).seen > type(self).not_ready
        self.send_response(200 if ready else 503)
        self.end_headers()
        self.wfile.write(b"ready\n" if ready else b"envoy not ready\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def agent() -> Iterator[str]:
    _Agent.seen = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz/ready"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_returns_once_the_agent_answers_ready(agent: str) -> None:
    assert main(["--url", agent, "--timeout", "30", "--period", "0.01"]) == 0
    assert _Agent.seen == _Agent.not_ready + 1  # it polled through the 503s


def test_fails_when_the_agent_never_gets_ready(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz/ready"  # nothing listens
    assert main(["--url", url, "--timeout", "0.3", "--period", "0.05"]) == 1
    assert f"{url} not ready after 0.3 s" in capsys.readouterr().err


def test_the_injected_hook_runs_as_a_module(agent: str) -> None:
    """The injector's command line, as the kubelet would exec it (python is this one)."""
    command = wait_command(InjectorSettings(hold_timeout_s=30), 15021)
    assert command[:3] == ["python", "-m", "shoal.cli.agentwait"]
    argv = [sys.executable, *command[1:]]
    argv[argv.index("--url") + 1] = agent
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "agent ready after" in done.stderr
