"""Loads the capture rules of agent/capture.py into a network namespace, and removes them.

iptables-legacy and iptables-nft keep separate rule sets that cannot see each other, so the
backend is picked as Istio does: legacy if that one already holds nat rules in the
namespace, else nft; `iptables-restore` (whichever the system links) if neither variant is
installed. Needs CAP_NET_ADMIN (and CAP_SYS_ADMIN to enter another namespace).
"""

from __future__ import annotations

import shutil
import subprocess

from shoal.agent.capture import CaptureConfig, iptables_rules

EMPTY_NAT = "*nat\nCOMMIT\n"


class CaptureApplyError(RuntimeError):
    """iptables refused the rules, or is missing; the message carries its own words."""


def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _has_nat_rules(save: str, netns: str | None) -> bool:
    try:
        out = subprocess.run(
            _in_netns(netns, [save, "-t", "nat"]),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except OSError:
        return False
    return any(line.startswith("-A ") for line in out.splitlines())


def restore_command(netns: str | None = None) -> str:
    """The `iptables-restore` variant to use in `netns` (see the module docstring)."""
    legacy, nft = shutil.which("iptables-legacy-restore"), shutil.which("iptables-nft-restore")
    if legacy and _has_nat_rules("iptables-legacy-save", netns):
        return legacy
    if nft:
        return nft
    plain = shutil.which("iptables-restore")
    if plain is None:
        raise CaptureApplyError("no iptables-restore: install the iptables package")
    return plain


def _restore(text: str, netns: str | None) -> None:
    argv = _in_netns(netns, [restore_command(netns)])
    try:
        proc = subprocess.run(
            argv, input=text, capture_output=True, text=True, timeout=20, check=False
        )
    except OSError as err:
        raise CaptureApplyError(f"cannot run {argv[0]}: {err.strerror or err}") from err
    if proc.returncode != 0:
        where = f" in netns {netns}" if netns else ""
        raise CaptureApplyError(f"{' '.join(argv)}{where}: {proc.stderr.strip()}")


def apply_capture(cfg: CaptureConfig, netns: str | None = None) -> str:
    """Replace the nat table of `netns` (None: this process's) with the capture rules."""
    text = iptables_rules(cfg)
    _restore(text, netns)
    return text


def remove_capture(netns: str | None = None) -> None:
    """An empty nat table: nothing captured any more."""
    _restore(EMPTY_NAT, netns)
