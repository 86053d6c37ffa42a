"""What an agent joining a WorkloadGroup needs to know (kept apart from agent/healthreport.py
so agents that join no group import no gRPC client)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Joining:
    group: str
    namespace: str
    address: str  # the address the entry gets (the agent's --ip)
    control_plane: str  # host:port (several: h1:p1,h2:p2)
    token_file: Path | None = None  # secure mode: the token, and the roots below
    roots_pem: str = ""
