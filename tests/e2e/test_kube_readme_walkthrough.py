"""The README's Kubernetes walkthrough, command by command, as a newcomer would type it.

The shell block under "Try it on your machine" is read from README.md and run as written
(line continuations joined, comments dropped), in a network namespace of its own so the fixed
ports it names (6443, 15012, 15014, 15017, 15000-15021) are free. The commands that serve
(the fake API server, the control plane, the agent) run in the background; every other one
must succeed, and `shoal proxy-status` must end up showing the pod's sidecar SYNCED on every
type. A README edit that breaks a step breaks this test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HEADING = "### Try it on your machine"
Run = Callable[..., "subprocess.CompletedProcess[str]"]
SERVERS = ("python -m tests.harness.kubeapi", "shoal control-plane", "shoal agent")

if os.geteuid() != 0 or shutil.which("ip") is None:  # CI runs as root with iproute2
    pytest.fail("this test needs root and `ip` (network namespaces)", pytrace=False)
if shutil.which("kubectl") is None:  # .ci/run installs it
    pytest.fail("this test needs kubectl on PATH", pytrace=False)


def walkthrough() -> list[str]:
    """The commands of the section's first ```sh block, one per logical line."""
    text = README.read_text()
    section = text[text.index(HEADING) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "no ```sh block under " + HEADING
    joined = block.group(1).replace("\\\n", " ")
    out = []
    for raw in joined.splitlines():
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if line:
            out.append(" ".join(line.split()))
    return out


def test_the_readme_kubernetes_walkthrough_works(tmp_path: Path) -> None:
    commands = walkthrough()
    assert any(c.startswith("shoal proxy-status") for c in commands), commands
    netns = f"shoalreadme{os.getpid()}"
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "KUBECONFIG": str(tmp_path / "fake.kubeconfig"),
        "HOME": str(tmp_path),  # kubectl's discovery cache
    }
    log = tmp_path / "walkthrough.log"
    background: list[subprocess.Popen[bytes]] = []
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        in_ns = ["ip", "netns", "exec", netns]
        subprocess.run([*in_ns, "ip", "link", "set", "lo", "up"], check=True)

        def run(command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
            # the README's absolute /tmp paths land in this test's own directory
            command = command.replace("/tmp/", f"{tmp_path}/")
            done = subprocess.run(
                [*in_ns, "bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                text=True, timeout=60, check=False,
            )  # fmt: skip
            with open(log, "a") as fh:
                fh.write(f"$ {command}\n{done.stdout}{done.stderr}")
            if check:
                assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
            return done

        for command in commands:
            if command.startswith(SERVERS):
                local = command.replace("/tmp/", f"{tmp_path}/")
                with open(log, "ab") as out:
                    background.append(subprocess.Popen(
                        [*in_ns, "bash", "-c", f"exec {local}"], cwd=ROOT, env=env,
                        stdout=out, stderr=out,
                    ))  # fmt: skip
                _wait_for(command, run, log)
            elif command.startswith("shoal proxy-status"):
                _wait_synced(command, run, log)
            else:
                # as a newcomer would: what the control plane writes (the root certificate
                # ConfigMap of a new namespace) may take a moment to appear
                deadline = time.monotonic() + 15
                while run(command, check=time.monotonic() > deadline).returncode != 0:
                    time.sleep(0.5)
    finally:
        for proc in reversed(background):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        subprocess.run(["ip", "netns", "del", netns], check=False)


def _wait_for(command: str, run: Run, log: Path) -> None:
    """Until the server the command started serves (what the next step needs)."""
    probe = {
        SERVERS[0]: "kubectl get ns default",
        SERVERS[1]: "curl -sf http://127.0.0.1:15014/ready",
        SERVERS[2]: "curl -sf http://127.0.0.1:15000/ready",
    }[next(s for s in SERVERS if command.startswith(s))]
    deadline = time.monotonic() + 90
    while run(probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{command} never served\n{log.read_text()}"
        time.sleep(0.3)


def _wait_synced(command: str, run: Run, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        out = run(command, check=False).stdout
        rows = [r.split() for r in out.splitlines()[1:] if r.strip()]
        if (
            rows
            and all(r[1:5] == ["SYNCED"] * 4 for r in rows)
            and rows[0][0] == ("reviews-v1.shop")
        ):
            return
        assert time.monotonic() < deadline, f"proxy-status never synced: {out}\n{log.read_text()}"
        time.sleep(0.5)


def test_the_walkthrough_is_found() -> None:
    commands = walkthrough()
    assert commands[0].startswith(SERVERS[0]), commands
    assert shlex.split(commands[-1])[:2] == ["shoal", "proxy-status"], commands
