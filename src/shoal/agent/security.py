"""Secure-mode settings of the agent (kept apart so plain agents import nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentSecurity:
    token_file: Path  # 0600; `Bearer` credential for the CA and xDS
    ca_root: Path  # PEM roots that signed the control plane's certificate
    ca_address: str = ""  # host:port of the CA (default: the xDS address)
    cert_ttl_s: float = 0  # requested lifetime; 0: the CA's default
