"""The real kubectl, pointed at a fake API server: the oracle for the fake's fidelity.

Each ``Kubectl`` has its own kubeconfig and discovery cache directory, so one test's CRDs
never leak into another's cached discovery.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

# KUBECTL=/path/to/kubectl runs the fidelity tests with another version (e.g. Debian's 1.20).
KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl") or "/usr/bin/kubectl"


class Kubectl:
    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache = workdir / "kube-cache"
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(workdir)}

    @property
    def minor(self) -> int:
        """kubectl's minor version (32 for v1.32.4): some behaviour differs by version."""
        info = json.loads(self("version", "--client", "-o", "json"))
        return int("".join(ch for ch in info["clientVersion"]["minor"] if ch.isdigit()))

    def argv(self, *args: str) -> list[str]:
        return [KUBECTL, f"--cache-dir={self.cache}", *args]

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def __call__(self, *args: str, input: str | None = None, timeout: float = 30) -> str:
        return self.run(*args, input=input, timeout=timeout).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
