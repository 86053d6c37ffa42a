"""A WorkloadGroup's readiness probe, run by the agent beside its workload.

The probe arrives from the control plane as the group's JSON (`probe` of the WorkloadGroup
spec, camelCase); `Probe.from_json` reads the part the agent runs, so the agent does not
import the config models. `check` runs one attempt: an HTTP GET answered 2xx/3xx, a TCP
connect, or a command that exits 0, each within `timeoutSeconds`. `ProbeState` applies
Kubernetes' thresholds: ready after `successThreshold` passes in a row, not ready after
`failureThreshold` failures in a row, unknown until one of them is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    kind: str  # "httpGet", "tcpSocket" or "exec"
    port: int = 0
    host: str = "127.0.0.1"
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay_s: float = 0.0
    timeout_s: float = 1.0
    period_s: float = 10.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Probe:
        def num(key: str, default: float) -> float:
            value = raw.get(key)
            return float(value) if isinstance(value, int | float) and value > 0 else default

        timing = {
            "initial_delay_s": num("initialDelaySeconds", 0.0),
            "timeout_s": num("timeoutSeconds", 1.0),
            "period_s": num("periodSeconds", 10.0),
            "success_threshold": int(num("successThreshold", 1)),
            "failure_threshold": int(num("failureThreshold", 3)),
        }
        http, tcp, run = raw.get("httpGet"), raw.get("tcpSocket"), raw.get("exec")
        if isinstance(http, Mapping):
            headers = http.get("httpHeaders") or []
            assert isinstance(headers, list)
            return cls(
                kind="httpGet",
                port=int(http["port"]),
                host=str(http.get("host") or "127.0.0.1"),
                path=str(http.get("path") or "/"),
                scheme=str(http.get("scheme") or "HTTP").upper(),
                headers=tuple((str(h["name"]), str(h.get("value", ""))) for h in headers),
                **timing,  # type: ignore[arg-type]
            )
        if isinstance(tcp, Mapping):
            return cls(
                kind="tcpSocket",
                port=int(tcp["port"]),
                host=str(tcp.get("host") or "127.0.0.1"),
                **timing,  # type: ignore[arg-type]
            )
        if isinstance(run, Mapping):
            command = run.get("command") or []
            assert isinstance(command, list)
            return cls(kind="exec", command=tuple(str(c) for c in command), **timing)  # type: ignore[arg-type]
        raise ValueError("the probe has none of httpGet, tcpSocket, exec")


async def _http(probe: Probe) -> tuple[bool, str]:
    context = None
    if probe.scheme == "HTTPS":
        # as the kubelet: the probe asks whether the workload answers, not who it is
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(probe.host, probe.port, ssl=context)
    try:
        lines = [f"GET {probe.path} HTTP/1.1", f"Host: {probe.host}:{probe.port}"]
        lines += [f"{name}: {value}" for name, value in probe.headers]
        lines += ["User-Agent: shoal-probe", "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode())
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1").strip()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"HTTP probe got {status_line!r}"
    code = int(parts[1])
    return 200 <= code < 400, f"HTTP probe: {code}"


async def _tcp(probe: Probe) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(probe.host, probe.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, f"TCP probe: {probe.host}:{probe.port} accepts connections"


async def _exec(probe: Probe) -> tuple[bool, str]:
    proc = await asyncio.create_subprocess_exec(
        *probe.command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        code = await proc.wait()
    except asyncio.CancelledError:  # timed out: the command must not outlive its attempt
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return code == 0, f"exec probe: exit status {code}"


async def check(probe: Probe) -> tuple[bool, str]:
    """One attempt: (passed, what happened)."""
    run = {"httpGet": _http, "tcpSocket": _tcp, "exec": _exec}[probe.kind]
    try:
        return await asyncio.wait_for(run(probe), probe.timeout_s)
    except TimeoutError:
        return False, f"{probe.kind} probe timed out after {probe.timeout_s:g} s"
    except OSError as err:
        return False, f"{probe.kind} probe failed: {err.strerror or err}"


@dataclass
class ProbeState:
    """Kubernetes' thresholds over the attempts: True ready, False not, None not known yet."""

    probe: Probe
    ready: bool | None = None
    _passes: int = 0
    _failures: int = 0

    def record(self, passed: bool) -> bool | None:
        if passed:
            self._passes, self._failures = self._passes + 1, 0
            if self._passes >= self.probe.success_threshold:
                self.ready = True
        else:
            self._failures, self._passes = self._failures + 1, 0
            if self._failures >= self.probe.failure_threshold:
                self.ready = False
        return self.ready
