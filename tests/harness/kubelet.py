"""The test harness playing a cluster's node: Deployment and EndpointSlice controllers and a
kubelet, against the fake API server, with every container a local process.

* Deployments become Pods created through the API's HTTP front door (POST), so the
  admission webhooks run on them exactly as on a cluster: an injected pod comes back with
  its `istio-proxy` container.
* Each pod gets its own network namespace and IP (podnet.py), its volumes as directories
  (the projected service-account token issued by the API server for the pod and audience
  the pod asks for, ConfigMaps, the downward API, emptyDirs), and each container runs with
  the pod's env (downward-API fields, `$(VAR)` expansion, as the kubelet does) and the
  container's command; paths under a volume mount are the volume's directory. `python` is
  this interpreter and `shoal` this venv's command (the images are not run).
* A pod's containers start in order, and a container's postStart exec hook must return
  before the next one starts (the kubelet's rule that Istio's holdApplicationUntilProxyStarts
  relies on; the injector uses it, shoal.kube.inject).
* A pod is Ready when all its containers run and every readiness probe answers 2xx on the pod
  IP; the EndpointSlice controller lists it in its Services' slices (ready or not, as
  Kubernetes does) and updates them as pods turn ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import procs
from harness.kubeapi import KubeAPIThread
from harness.podnet import PodNetwork

Obj = dict[str, Any]
_VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass
class RunningPod:
    name: str
    namespace: str
    ip: str
    netns: str
    dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ready: bool = False
    pod: Obj = field(default_factory=dict)  # as created (after admission)
    volumes: dict[str, Path] = field(default_factory=dict)
    waiting: list[Obj] = field(default_factory=list)  # containers not started yet, in order
    hook: subprocess.Popen[bytes] | None = None  # a postStart hook the next container awaits
    hook_of: str = ""


def _field(pod: Obj, path: str, ip: str) -> str:
    if path == "status.podIP":
        return ip
    value: Any = pod
    for part in path.split("."):
        value = value.get(part, {}) if isinstance(value, dict) else {}
    return value if isinstance(value, str) else ""


def _expand(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _program(word: str) -> str:
    if word == "python":
        return sys.executable
    local = _VENV_BIN / word
    return str(local) if local.exists() else (shutil.which(word) or word)


class Node:
    """Controllers and a kubelet for one namespace's Deployments (a context manager)."""

    def __init__(self, api: KubeAPIThread, workdir: Path, network: PodNetwork) -> None:
        self.api = api
        self.workdir = workdir
        self.network = network
        self.pods: dict[tuple[str, str], RunningPod] = {}
        # short: a pod's agent puts a Unix socket (SDS) under its volume (108-byte limit)
        self.root = Path(tempfile.mkdtemp(prefix="kl", dir="/tmp"))

    # ------------------------------------------------------------------ controllers
    def reconcile_deployments(self, namespace: str) -> list[Obj]:
        """Create the pods of every Deployment in `namespace` (through admission)."""
        created = []
        for deploy in self.api.objects("apps/v1", "Deployment", namespace):
            name = deploy["metadata"]["name"]
            template = deploy["spec"]["template"]
            for i in range(int(deploy["spec"].get("replicas", 1))):
                pod_name = f"{name}-{i}"
                if self.api.get("v1", "Pod", pod_name, namespace) is not None:
                    continue
                meta = dict(template.get("metadata") or {})
                meta.update(name=pod_name, namespace=namespace, generateName=f"{name}-")
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                       "spec": template["spec"]}  # fmt: skip
                created.append(self._post(f"/api/v1/namespaces/{namespace}/pods", pod))
        return created

    def _post(self, path: str, obj: Obj) -> Obj:
        req = urllib.request.Request(
            self.api.server.url + path,
            data=json.dumps(obj).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            created: Obj = json.loads(resp.read())
        return created

    def sync_endpoint_slices(self, namespace: str) -> None:
        """One slice per Service with a selector, listing the pods it selects."""
        pods = self.api.objects("v1", "Pod", namespace)
        rt = self.api.type("discovery.k8s.io/v1", "EndpointSlice")
        for svc in self.api.objects("v1", "Service", namespace):
            selector = (svc.get("spec") or {}).get("selector") or {}
            if not selector:
                continue
            name = svc["metadata"]["name"]
            endpoints = []
            for pod in pods:
                labels = pod["metadata"].get("labels") or {}
                running = self.pods.get((namespace, pod["metadata"]["name"]))
                if running is None or any(labels.get(k) != v for k, v in selector.items()):
                    continue
                endpoints.append({
                    "addresses": [running.ip],
                    "conditions": {"ready": running.ready},
                    "targetRef": {"kind": "Pod", "namespace": namespace,
                                  "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]},
                })  # fmt: skip
            ports = [
                {"name": p.get("name", ""), "port": p.get("targetPort", p["port"]),
                 "protocol": p.get("protocol", "TCP")}
                for p in svc["spec"].get("ports", [])
            ]  # fmt: skip
            slice_obj = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": f"{name}-node", "namespace": namespace,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "ports": ports,
                "endpoints": endpoints,
            }  # fmt: skip
            held = self.api.get("discovery.k8s.io/v1", "EndpointSlice", f"{name}-node", namespace)
            if held is None:
                self.api.create(rt, slice_obj)
            elif (held.get("endpoints"), held.get("ports")) != (endpoints, ports):
                slice_obj["metadata"]["resourceVersion"] = held["metadata"]["resourceVersion"]
                self.api.call(self.api.server.store.update, rt, slice_obj, None)

    # ------------------------------------------------------------------ kubelet
    def start_pods(self, namespace: str) -> None:
        for pod in self.api.objects("v1", "Pod", namespace):
            key = (namespace, pod["metadata"]["name"])
            if key not in self.pods:
                self.pods[key] = self._start(pod)

    def _start(self, pod: Obj) -> RunningPod:
        name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
        netns, ip = self.network.add_pod()
        running = RunningPod(name, ns, ip, netns, self.root / str(len(self.pods)))
        running.dir.mkdir(parents=True)
        self._set_status(pod, ip, ready=False)
        running.pod = self.api.get("v1", "Pod", name, ns) or pod
        running.volumes = self._volumes(running.pod, running)
        running.waiting = list(running.pod["spec"]["containers"])
        self._advance(running)
        return running

    def _advance(self, running: RunningPod) -> None:
        """Start the pod's next containers, in order: as the kubelet does, a container's
        postStart hook must have returned before the next container starts (a failing hook
        is an error here; the kubelet would kill and restart the container)."""
        while True:
            if running.hook is not None:
                code = running.hook.poll()
                if code is None:
                    return
                if code != 0:
                    tail = self.log(running, running.hook_of)
                    raise RuntimeError(
                        f"{running.namespace}/{running.name} {running.hook_of}: postStart hook "
                        f"exited {code}:\n{tail}"
                    )
                running.hook = None
            if not running.waiting:
                return
            container = running.waiting.pop(0)
            running.procs[container["name"]] = self._run(running.pod, container, running)
            hook = ((container.get("lifecycle") or {}).get("postStart") or {}).get("exec")
            if hook:
                running.hook_of = container["name"]
                running.hook = self._run(running.pod, container, running, hook["command"])

    def _volumes(self, pod: Obj, running: RunningPod) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for vol in pod["spec"].get("volumes") or []:
            where = running.dir / vol["name"]
            where.mkdir(parents=True)
            out[vol["name"]] = where
            if "configMap" in vol:
                cm = self.api.get("v1", "ConfigMap", vol["configMap"]["name"], running.namespace)
                assert cm is not None, f"ConfigMap {vol['configMap']['name']} not there yet"
                for key, value in (cm.get("data") or {}).items():
                    (where / key).write_text(value)
            for source in (vol.get("projected") or {}).get("sources") or []:
                sa_token = source.get("serviceAccountToken")
                if sa_token is not None:
                    token = self.api.issue_token(
                        running.namespace,
                        pod["spec"].get("serviceAccountName") or "default",
                        (sa_token["audience"],),
                        pod=running.name,
                        expiration_seconds=int(sa_token.get("expirationSeconds", 3600)),
                    )
                    (where / sa_token["path"]).write_text(token)
                    (where / sa_token["path"]).chmod(0o600)
            for item in (vol.get("downwardAPI") or {}).get("items") or []:
                values = _field(pod, item["fieldRef"]["fieldPath"], running.ip) or json.dumps(
                    pod["metadata"].get(item["fieldRef"]["fieldPath"].split(".")[-1]) or {}
                )
                (where / item["path"]).write_text(values)
        return out

    def _run(
        self, pod: Obj, container: Obj, running: RunningPod, command: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        """The container's process, or `command` (an exec hook) run in it: the container's
        env, mounts and network namespace."""
        mounts = {
            m["mountPath"]: running.volumes[m["name"]] for m in container.get("volumeMounts") or []
        }

        def local(text: str) -> str:
            for mount, path in sorted(mounts.items(), key=lambda m: -len(m[0])):
                if text == mount or text.startswith(mount + "/"):
                    return str(path) + text[len(mount) :]
            return text

        env: dict[str, str] = {}
        for e in container.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("fieldRef")
            value = _field(pod, ref["fieldPath"], running.ip) if ref else e.get("value", "")
            env[e["name"]] = local(_expand(str(value), env))
        words = command or [*container.get("command", []), *container.get("args", [])]
        argv = [_expand(a, env) for a in words]
        argv = [_program(argv[0]), *(local(a) for a in argv[1:])]
        base = {k: os.environ[k] for k in ("PATH", "LANG", "HOME") if k in os.environ}
        log = (running.dir / f"{container['name']}.log").open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", running.netns, *argv],
            env={**base, **env}, cwd=running.dir,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        procs.register(proc)
        return proc

    def _set_status(self, pod: Obj, ip: str, *, ready: bool) -> None:
        rt = self.api.type("v1", "Pod")
        name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]

        def update() -> None:
            held = self.api.server.store.find(rt, ns, name)
            new = json.loads(json.dumps(held))
            new["spec"]["nodeName"] = "node-0"
            new["status"] = {
                "phase": "Running",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            }
            self.api.server.store.update(rt, new, None)

        self.api.call(update)

    def probe(self) -> bool:
        """Start the containers whose turn came, then run every readiness probe once; a pod
        turning ready is written to the API. True if one did."""
        turned = False
        for (ns, name), running in self.pods.items():
            pod = self.api.get("v1", "Pod", name, ns)
            if pod is None or running.ready:
                continue
            self._advance(running)
            for container_name, proc in running.procs.items():
                if proc.poll() is not None:
                    tail = self.log(running, container_name)
                    raise RuntimeError(f"{ns}/{name} {container_name} exited:\n{tail}")
            if running.waiting or running.hook is not None:
                continue  # not every container has started: not ready
            probes = [c["readinessProbe"]["httpGet"] for c in pod["spec"]["containers"]
                      if "readinessProbe" in c]  # fmt: skip
            if all(self._get(running.ip, p["port"], p.get("path", "/")) for p in probes):
                running.ready = True
                turned = True
                self._set_status(pod, running.ip, ready=True)
        return turned

    @staticmethod
    def _get(ip: str, port: int, path: str) -> bool:
        url = f"http://{ip}:{port}{path}"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            return 200 <= resp.status < 300
        return False

    def run_until_ready(self, namespace: str, within: float = 60.0) -> None:
        """Pods for every Deployment, started, probed until all are Ready, in slices."""
        self.reconcile_deployments(namespace)
        self.start_pods(namespace)
        deadline = time.monotonic() + within
        while not all(p.ready for p in self.pods.values()):
            if time.monotonic() > deadline:
                waiting = [n for n, p in self.pods.items() if not p.ready]
                raise AssertionError(f"pods not ready after {within} s: {waiting}\n{self.logs()}")
            if self.probe():  # the EndpointSlice controller follows readiness as it changes
                self.sync_endpoint_slices(namespace)
            time.sleep(0.1)
        self.sync_endpoint_slices(namespace)

    # ------------------------------------------------------------------ diagnostics, teardown
    def log(self, running: RunningPod, container: str, lines: int = 30) -> str:
        path = running.dir / f"{container}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def logs(self) -> str:
        out = []
        for running in self.pods.values():
            for container in running.procs:
                out.append(
                    f"--- {running.name}/{container} ---\n{self.log(running, container, 15)}"
                )
        return "\n".join(out)

    def stop(self) -> None:
        # every container is told at once, as the kubelet does, then each is waited for
        everything = [p for r in self.pods.values() for p in [*r.procs.values(), r.hook] if p]
        for proc in everything:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in everything:
            procs.terminate(proc, timeout=5)
        # keep the logs beside the test's files
        for running in self.pods.values():
            for log in running.dir.glob("*.log"):
                target = self.workdir / "pods" / f"{running.namespace}.{running.name}"
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(log, target / log.name)
        self.pods.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
