"""A proxyless gRPC client as a user runs one: its own process, GRPC_XDS_BOOTSTRAP set to the
file `shoal bootstrap grpc` wrote, channels to `xds:///` targets (grpcio reads the bootstrap
once per process, so each test client is a process of its own).

`XdsClient` starts it and sends it batches over stdin; the process keeps its channels open
between batches (config changes reach it over xDS, never by a restart). A batch is one JSON
line: {"target": "xds:///HOST:PORT", "calls": N, "metadata": [[k, v]], "timeout": s}; the
answer is one JSON line: {"answers": {backend: n}, "codes": {status: n}, "errors": [..],
"elapsed": [s, ...]}. With `xds_credentials` the channels use gRPC's xDS credentials (mTLS
as the control plane's clusters say, gRFC A29).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Self

METHOD = "/shoal.test.Echo/Call"


def _serve() -> None:  # pragma: no cover - runs in the client process
    import grpc
    import grpc.experimental

    channels: dict[str, Any] = {}
    for line in sys.stdin:
        batch = json.loads(line)
        target = batch["target"]
        if target not in channels:
            if os.environ.get("SHOAL_TEST_XDS_CREDENTIALS") == "1":
                # security from the control plane (CDS), plaintext where it sends none
                fallback = grpc.experimental.insecure_channel_credentials()
                creds = grpc.xds_channel_credentials(fallback)
                channels[target] = grpc.secure_channel(target, creds)
            else:
                channels[target] = grpc.insecure_channel(target)
        call = channels[target].unary_unary(METHOD)
        answers: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        errors: list[str] = []
        elapsed: list[float] = []
        for _ in range(batch["calls"]):
            started = time.monotonic()
            try:
                reply = call(
                    b"hi",
                    timeout=batch.get("timeout", 10.0),
                    metadata=[tuple(m) for m in batch.get("metadata", [])],
                    wait_for_ready=batch.get("wait_for_ready", False),
                )
                answers[reply.decode()] += 1
                codes["OK"] += 1
            except grpc.RpcError as err:
                codes[err.code().name] += 1
                if len(errors) < 3:
                    errors.append(f"{err.code().name}: {err.details()}")
            elapsed.append(round(time.monotonic() - started, 4))
        out = {"answers": answers, "codes": codes, "errors": errors, "elapsed": elapsed}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


class XdsClient:
    """The client process; `run(...)` sends one batch and returns its answer."""

    def __init__(self, bootstrap: Path, log: Path, *, xds_credentials: bool = False) -> None:
        env = {**os.environ, "GRPC_XDS_BOOTSTRAP": str(bootstrap)}
        env["SHOAL_TEST_XDS_CREDENTIALS"] = "1" if xds_credentials else "0"
        env.pop("GRPC_XDS_BOOTSTRAP_CONFIG", None)
        self._log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                text=True,
            )
        from harness import procs  # (not at the top: this file also runs as the client)

        procs.register(self.proc)  # type: ignore[arg-type]

    def run(
        self,
        target: str,
        calls: int,
        *,
        metadata: dict[str, str] | None = None,
        timeout: float = 10.0,
        wait_for_ready: bool = False,
    ) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        batch = {
            "target": target,
            "calls": calls,
            "metadata": sorted((metadata or {}).items()),
            "timeout": timeout,
            "wait_for_ready": wait_for_ready,
        }
        self.proc.stdin.write(json.dumps(batch) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the gRPC client exited; its log:\n{self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        from harness import procs

        procs.unregister(self.proc)  # type: ignore[arg-type]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    _serve()
