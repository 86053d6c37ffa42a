"""One replica of a LocalWorkload: its app process and its sidecar (a `shoal agent`).

The sidecar starts first and stays up while the app restarts. The replica is registered as an
endpoint of its service only while its app accepts connections, and is removed the moment the
app exits, so callers stop being routed to it within one debounce window.

With `shoal up --netns` the replica is a pod (pods.py): app and sidecar run in its network
namespace on their Istio ports, the app on its service port with no HTTP_PROXY (capture sends
its traffic through the sidecar), and its endpoint is the pod's address.

A sidecar that exits (its Envoy crashed `--give-up-after` times in a row, e.g. because another
process took one of its ports, or its health port could not be bound) is started again on
fresh ports, and its app with it: the new ports reach the registry (inbound), the table of
`/debug/workloads` and, through the new sidecar's node metadata, the metrics scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import aiohttp

from shoal.api import LocalWorkloadSpec, Resource
from shoal.model import Endpoint, RegistryInstance
from shoal.runtime.child import Child
from shoal.runtime.podnet import PodNetError
from shoal.runtime.pods import CaptureApplyError, CaptureError, PodSlot
from shoal.runtime.ports import PortAllocator

log = logging.getLogger("shoal.runtime")

_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 10.0
# quick Envoy crashes after which the agent exits and is started again on fresh ports
SIDECAR_GIVE_UP_AFTER = 3


@dataclass
class ReplicaPorts:
    app: int
    inbound: int
    outbound: int
    admin: int
    health: int
    metrics: int  # the sidecar's Istio-named metrics (Istio's 15090)

    @classmethod
    def allocate(cls, ports: PortAllocator) -> ReplicaPorts:
        return cls(*(ports.take() for _ in range(6)))

    @classmethod
    def in_pod(cls, spec: LocalWorkloadSpec) -> ReplicaPorts:
        """A pod's own network stack: Istio's fixed ports, the app on its service port."""
        first = spec.ports[0]
        return cls(first.target_port or first.number, 15006, 15001, 15000, 15021, 15090)


@dataclass
class ReplicaState:
    state: str = "starting"
    restarts: int = 0
    last_exit: int | None = None
    since: float = field(default_factory=time.time)


def _command(argv: list[str]) -> list[str]:
    # "python" means the interpreter running shoal, so samples run from the same venv
    if argv and argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


class Replica:
    def __init__(
        self,
        workload: Resource,
        *,
        index: int,
        hostname: str,
        ports: ReplicaPorts,
        new_ports: Callable[[], ReplicaPorts],
        xds_port: int,
        on_change: Callable[[], None],
        agent_args: Sequence[str] = (),
        tls_mode: str = "disabled",
        pod: PodSlot | None = None,
    ) -> None:
        assert isinstance(workload.spec, LocalWorkloadSpec)
        self.workload = workload
        self.spec: LocalWorkloadSpec = workload.spec
        self.index = index
        self.hostname = hostname
        self.ports = ports
        self._new_ports = new_ports
        self.sidecar_restarts = 0
        self.xds_port = xds_port
        self.name = f"{workload.meta.name}-{index}"
        # secure mode: token file and trust bundle for the agent; endpoints speak mTLS
        self.agent_args = list(agent_args)
        self.tls_mode = tls_mode
        self.status = ReplicaState()
        self.registered = False
        self._on_change = on_change
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.agent: Child | None = None
        self.app: Child | None = None
        self.pod = pod  # --netns: the replica's network namespace (pods.py)

    @property
    def namespace(self) -> str:
        return self.workload.meta.namespace

    @property
    def node_id(self) -> str:
        ns = self.namespace
        return f"sidecar~{self.ip}~{self.name}.{ns}~{ns}.svc.cluster.local"

    @property
    def ip(self) -> str:
        return self.pod.ip if self.pod is not None and self.pod.pod is not None else "127.0.0.1"

    def _endpoint_ports(self) -> dict[str, int]:
        if self.pod is not None:
            # the pod's capture hands podIP:PORT to the sidecar's 15006 chain for PORT
            return {p.name: p.target_port or p.number for p in self.spec.ports}
        # every service port enters through the sidecar's inbound listener
        return {p.name: self.ports.inbound for p in self.spec.ports}

    def instance(self) -> RegistryInstance:
        endpoint = Endpoint(
            address=self.ip,
            labels=MappingProxyType(dict(self.spec.labels)),
            ports=MappingProxyType(self._endpoint_ports()),
            service_account=self.spec.service_account or "default",
            tls_mode=self.tls_mode,
            workload=self.workload.meta.name,
            namespace=self.namespace,
        )
        return RegistryInstance(hostname=self.hostname, endpoint=endpoint, namespace=self.namespace)

    # ------------------------------------------------------------------ processes
    def _agent_argv(self) -> list[str]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.spec.labels.items()))
        p = self.ports
        if self.pod is not None:
            return [
                *self.pod.agent_prefix(),
                sys.executable, "-m", "shoal.agent", "--log-level", "WARNING",
                "--name", self.name,
                "--namespace", self.namespace,
                "--workload", self.workload.meta.name,
                "--labels", labels,
                "--service-account", self.spec.service_account or "default",
                "--xds-address", f"{self.pod.pods.host_ip}:{self.xds_port}",
                "--interception", "REDIRECT",
                "--ip", self.pod.ip,
                "--admin-port", str(p.admin),
                "--health-port", str(p.health),
                "--health-host", "0.0.0.0",
                "--prometheus-port", str(p.metrics),
                "--service-host", self.hostname,
                "--base-id", str(self.pod.base_id),
                "--drain-seconds", "1",
                "--give-up-after", str(SIDECAR_GIVE_UP_AFTER),
                *self.agent_args,
            ]  # fmt: skip
        return [
            sys.executable, "-m", "shoal.agent", "--log-level", "WARNING",
            "--name", self.name,
            "--namespace", self.namespace,
            "--workload", self.workload.meta.name,
            "--labels", labels,
            "--service-account", self.spec.service_account or "default",
            "--xds-address", f"127.0.0.1:{self.xds_port}",
            "--outbound-port", str(p.outbound),
            "--inbound-port", str(p.inbound),
            "--app-port", str(p.app),
            "--admin-port", str(p.admin),
            "--health-port", str(p.health),
            "--prometheus-port", str(p.metrics),
            "--service-host", self.hostname,
            "--drain-seconds", "1",
            "--give-up-after", str(SIDECAR_GIVE_UP_AFTER),
            *self.agent_args,
        ]  # fmt: skip

    def _app_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(self.spec.env)
        if self.pod is not None:
            # the app knows nothing of the mesh: capture takes its calls to the sidecar
            env.update(
                {
                    "PORT": str(self.ports.app),
                    "HOST": "0.0.0.0",  # the sidecar delivers to podIP:PORT from 127.0.0.6
                    "SHOAL_SERVICE": self.hostname.split(".", 1)[0],
                    "SHOAL_VERSION": self.spec.labels.get("version", "v1"),
                    "SHOAL_REPLICA": self.name,
                    "SHOAL_NAMESPACE": self.namespace,
                    "PYTHONUNBUFFERED": "1",
                }
            )
            return env
        env.update(
            {
                "PORT": str(self.ports.app),
                # apps reach other services by name through their own sidecar
                "HTTP_PROXY": f"http://127.0.0.1:{self.ports.outbound}",
                "http_proxy": f"http://127.0.0.1:{self.ports.outbound}",
                "SHOAL_SERVICE": self.hostname.split(".", 1)[0],
                "SHOAL_VERSION": self.spec.labels.get("version", "v1"),
                "SHOAL_REPLICA": self.name,
                "SHOAL_NAMESPACE": self.namespace,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    async def _app_listening(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.app is not None and self.app.running:
            if self.pod is not None:
                if await self.pod.listening(self.ports.app):
                    return True
                await asyncio.sleep(0.05)
                continue
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.ports.app)
                writer.close()
                await writer.wait_closed()
                return True
            await asyncio.sleep(0.05)
        return False

    async def _sidecar_ready(self, within: float, agent: Child) -> bool:
        url = f"http://{self.ip}:{self.ports.health}/healthz/ready"
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while time.monotonic() < deadline and not self._stopping and agent.running:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return True
                await asyncio.sleep(0.1)
        return False

    def _set(self, state: str, registered: bool) -> None:
        self.status.state = state
        self.status.since = time.time()
        if registered != self.registered:
            self.registered = registered
            self._on_change()

    async def _make_pod(self) -> bool:
        """--netns: the pod exists with its capture rules; False (and why, in the state)
        if it cannot be made."""
        if self.pod is None:
            return True
        try:
            await asyncio.to_thread(self.pod.ensure)
        except (CaptureError, CaptureApplyError, PodNetError) as err:
            log.error("%s: no pod: %s", self.name, err)
            self.status.state = f"pod error: {err}"
            return False
        return True

    async def _run(self) -> None:
        backoff = _BACKOFF_MIN
        if not await self._make_pod():
            return
        while not self._stopping:
            started = time.monotonic()
            await self._run_with_sidecar()
            if self._stopping:
                return
            # the sidecar exited: one of its ports may be someone else's now
            if time.monotonic() - started > 30:
                backoff = _BACKOFF_MIN
            self.sidecar_restarts += 1
            old = self.ports
            if self.pod is None:  # a pod's ports are its own
                self.ports = self._new_ports()
            log.warning(
                "%s: sidecar exited with %s; starting it again in %.1f s on fresh ports "
                "(admin %d -> %d, inbound %d -> %d)",
                self.name, self.agent.proc.returncode if self.agent and self.agent.proc else None,
                backoff, old.admin, self.ports.admin, old.inbound, self.ports.inbound,
            )  # fmt: skip
            self.status.state = f"sidecar restarting in {backoff:.1f}s"
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _run_with_sidecar(self) -> None:
        """Run the sidecar, and the app restarted as it exits, until the sidecar exits."""
        agent = self.agent = Child(f"{self.name}/sidecar", self._agent_argv(), dict(os.environ))
        await agent.start()
        sidecar_gone = asyncio.create_task(agent.wait())
        try:
            # Like Istio's holdApplicationUntilProxyStarts: an app that calls out at start-up
            # must find its sidecar already configured.
            self.status.state = "sidecar starting"
            if not await self._sidecar_ready(within=30, agent=agent):
                if not agent.running:
                    return
                log.warning("%s: sidecar not ready after 30 s; starting the app anyway", self.name)
            backoff = _BACKOFF_MIN
            while not self._stopping:
                argv = _command(list(self.spec.command))
                if self.pod is not None:
                    argv = [*self.pod.app_prefix(), *argv]
                self.app = Child(self.name, argv, self._app_env())
                started = time.monotonic()
                await self.app.start()
                if await self._app_listening(within=30):
                    self._set("running", registered=True)
                app_gone = asyncio.create_task(self.app.wait())
                await asyncio.wait({app_gone, sidecar_gone}, return_when=asyncio.FIRST_COMPLETED)
                if not app_gone.done():
                    # the sidecar went: callers lose this replica now, the app goes with it
                    self._set("sidecar exited", registered=False)
                    await self.app.stop()
                    app_gone.cancel()
                    return
                code = app_gone.result()
                self.status.last_exit = code
                self._set("exited", registered=False)
                if self._stopping or sidecar_gone.done():
                    return
                if time.monotonic() - started > 10:
                    backoff = _BACKOFF_MIN
                self.status.restarts += 1
                log.warning("%s exited with %s; restarting in %.1f s", self.name, code, backoff)
                self.status.state = f"restarting in {backoff:.1f}s"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
        finally:
            if self._stopping:
                sidecar_gone.cancel()
            elif not sidecar_gone.done():
                await agent.stop(grace=5)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self, drain: float = 0.0) -> None:
        """App first (callers are deregistered before it goes), then its sidecar.

        `drain`: seconds the app keeps serving after it left the endpoints, so callers' new
        config (routes moving a last replica's share away, then its endpoint removed; see
        generate/emptydest.py) reaches them before it stops accepting (Kubernetes' preStop)."""
        self._stopping = True
        self._set("stopping", registered=False)
        if drain > 0 and self.app is not None and self.app.running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain):
                    await self.app.wait()  # an app that exits meanwhile is not waited for
        if self.app is not None:
            await self.app.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.app is not None:
            await self.app.stop()
        if self.agent is not None:
            await self.agent.stop(grace=5)
        self.status.state = "stopped"
