"""Bootstrap tokens: who a workload is, signed by the control plane.

A token is `shoal1.<payload>.<mac>`, payload `namespace/service-account/expiry` (base64url),
mac HMAC-SHA256 with a 32-byte key only the control plane holds (`token-key` in the CA
directory, 0600). `shoal up` issues one per replica and hands it to the agent in a 0600 file;
the agent sends it as `authorization: Bearer <token>` on CA and xDS calls.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from pathlib import Path

from shoal.ca.files import write_secret
from shoal.ca.identity import Identity, IdentityError

TOKEN_KEY = "token-key"
PREFIX = "shoal1"
DEFAULT_TTL_S = 30 * 24 * 3600


class TokenError(ValueError):
    """A missing, malformed, forged or expired token. The message never quotes the token."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token key must be at least 32 bytes")
        self._key = key

    @classmethod
    def in_dir(cls, ca_dir: Path) -> TokenIssuer:
        """The issuer whose key lives in `ca_dir` (created on first use)."""
        path = ca_dir / TOKEN_KEY
        if not path.exists():
            write_secret(path, os.urandom(32))
        return cls(path.read_bytes())

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, identity: Identity, ttl_s: float = DEFAULT_TTL_S) -> str:
        expiry = int(time.time() + ttl_s)
        payload = _b64(f"{identity.namespace}/{identity.service_account}/{expiry}".encode())
        return f"{PREFIX}.{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> Identity:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise TokenError("malformed token")
        _, payload, mac = parts
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TokenError("token signature does not verify")
        try:
            namespace, sa, expiry = _unb64(payload).decode().split("/")
            identity = Identity(namespace, sa)
            if int(expiry) < time.time():
                raise TokenError("token expired")
        except (ValueError, IdentityError) as err:
            if isinstance(err, TokenError):
                raise
            raise TokenError("malformed token payload") from None
        return identity

    def verify_header(self, value: str | None) -> Identity:
        """Check an `authorization` header value: `Bearer <token>`."""
        if not value:
            raise TokenError("no authorization metadata")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("authorization must be 'Bearer <token>'")
        return self.verify(token.strip())


def claimed_identity(token: str) -> Identity:
    """Who `token` says it is, without checking it (only the control plane can): lets an
    agent that was handed a token know its namespace and service account."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("malformed token")
    try:
        namespace, sa, _ = _unb64(parts[1]).decode().split("/")
        return Identity(namespace, sa)
    except (ValueError, IdentityError):
        raise TokenError("malformed token payload") from None
