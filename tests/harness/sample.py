"""The sample service (``python -m shoal.samples.service``) as a subprocess, for tests that need
a backend that fails, is slow, or calls another service through its sidecar.

``SampleProcess`` starts it on a free port with the given flags and environment, waits for
``/healthz``, changes its knobs at run time and always stops and reaps it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import procs
from harness.adminhttp import request
from harness.ports import free_port
from harness.wait import wait_until


class SampleProcess:
    def __init__(self, name: str, workdir: Path, *args: str, env: dict[str, str] | None = None):
        self.name = name
        self.port = free_port()
        self.log_path = workdir / f"sample-{name}-{self.port}.log"
        self.args = args
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SampleProcess:
        argv = [sys.executable, "-m", "shoal.samples.service", "--name", self.name]
        argv += ["--port", str(self.port), *self.args]
        # Only the variables we pass: no inherited HTTP_PROXY sends calls somewhere else.
        env = {"PATH": "/usr/bin:/bin", **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        procs.register(self.proc)
        url = f"http://127.0.0.1:{self.port}/healthz"
        wait_until(
            lambda: request("GET", url, timeout=1)[0] == 200,
            15,
            what=f"sample {self.name} to answer /healthz",
            describe=self.log_tail,
        )
        return self

    def knobs(self, **changes: object) -> None:
        status = request(
            "POST",
            f"http://127.0.0.1:{self.port}/admin/knobs",
            body=json.dumps(changes).encode(),
            timeout=2,
        )[0]
        assert status == 200, status

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            procs.terminate(self.proc, 5)
