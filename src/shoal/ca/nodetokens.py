"""Node tokens: a node proxy's credential, naming the node and the identities of its pods.

A node proxy (one Envoy serving every pod of a host, `proxy: node`) asks the CA for one
certificate per service account with a pod on its node. It must not be able to ask for any
other identity: a compromised node then leaks only its own pods' identities (Istio's rule for
ztunnel). The token is `shoalnode1.<payload>.<mac>`; the payload (base64url JSON) holds the
node name, the `namespace/service-account` identities scheduled there and the expiry; the
mac is HMAC-SHA256 under the control plane's token key (tokens.py), over a domain-separated
message so a node token can never verify as a workload token or the other way round.

Whoever places pods on the node (`shoal up`, the operator) issues the token; the pod list is
fixed by it -- a new pod on the node needs a new token (the Kubernetes path, nodes proved by
TokenReview and pods by `spec.nodeName`, is not implemented).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shoal.ca.identity import Identity, IdentityError
from shoal.ca.tokens import TOKEN_KEY, TokenError, TokenIssuer

NODE_PREFIX = "shoalnode1"
# the node proxy's own identity, which its ADS stream must claim (NAMESPACE/SERVICE_ACCOUNT)
NODE_NAMESPACE = "shoal-system"
_DOMAIN = b"shoal node token v1\x00"
DEFAULT_TTL_S = 30 * 24 * 3600


def node_identity(node: str) -> Identity:
    """Who the node proxy itself is: `spiffe://cluster.local/ns/shoal-system/sa/node-NAME`."""
    return Identity(NODE_NAMESPACE, f"node-{node}")


@dataclass(frozen=True)
class NodeGrant:
    """What a verified node token proves: the node, and the identities it may hold."""

    node: str
    identities: frozenset[Identity]

    @property
    def identity(self) -> Identity:
        return node_identity(self.node)

    def allows(self, identity: Identity) -> bool:
        return identity in self.identities


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_node_token(header: str | None) -> bool:
    """Whether an `authorization` value carries a node token (`Bearer shoalnode1....`)."""
    _, _, token = (header or "").partition(" ")
    return token.strip().startswith(NODE_PREFIX + ".")


class NodeTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token key must be at least 32 bytes")
        self._key = key

    @classmethod
    def in_dir(cls, ca_dir: Path) -> NodeTokens:
        """Node tokens under the key of `ca_dir` (the workload tokens' key, made if absent)."""
        TokenIssuer.in_dir(ca_dir)  # creates the key file on first use
        return cls((ca_dir / TOKEN_KEY).read_bytes())

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, _DOMAIN + payload.encode(), hashlib.sha256).digest()
        return _b64(digest)

    def issue(self, node: str, identities: Iterable[Identity], ttl_s: float = DEFAULT_TTL_S) -> str:
        node_identity(node)  # a node name must make a valid identity
        body = {
            "node": node,
            "identities": sorted(f"{i.namespace}/{i.service_account}" for i in set(identities)),
            "exp": int(time.time() + ttl_s),
        }
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{NODE_PREFIX}.{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> NodeGrant:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != NODE_PREFIX:
            raise TokenError("malformed node token")
        _, payload, mac = parts
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TokenError("node token signature does not verify")
        try:
            body = json.loads(_unb64(payload))
            node = str(body["node"])
            node_identity(node)
            identities = frozenset(Identity(*str(raw).split("/", 1)) for raw in body["identities"])
            expiry = int(body["exp"])
        except (ValueError, KeyError, TypeError, IdentityError):
            raise TokenError("malformed node token payload") from None
        if expiry < time.time():
            raise TokenError("node token expired")
        return NodeGrant(node, identities)

    def verify_header(self, value: str | None) -> NodeGrant:
        scheme, _, token = (value or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("authorization must be 'Bearer <token>'")
        return self.verify(token.strip())
