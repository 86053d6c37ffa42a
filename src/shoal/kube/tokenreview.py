"""Who a proxy is, from its Kubernetes service-account token: a TokenReview, audience-bound.

A sidecar sends its pod's projected token (audience `istio-ca`, kubelet-rotated) as
`authorization: Bearer <token>` on xDS and CA calls. The API server, not shoal, checks the
signature, expiry and that the pod still exists; shoal asks it with a TokenReview naming the
audience, and accepts the token only when the server says it is authenticated *for that
audience* (a token minted for another service cannot be replayed here). The identity is the
reviewed username `system:serviceaccount:<namespace>:<name>`: what the server says the
token is, never what the request says.

Reviews are cached by the token's hash for a short while: when a replica dies, its proxies
reconnect to the others at once, and a thousand reviews in the same second would only load the
API server. Never past the token's own `exp`: an expired token is reviewed again (and refused),
not accepted from the cache. While the API server is unreachable new streams are refused as
unavailable (proxies retry); connected ones stay connected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections import OrderedDict

from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.resources.authentication_v1 import TokenReview

from shoal.kube.client import KubeClient, KubeError

log = logging.getLogger("shoal.kube.tokenreview")

# Istio's audience for workload tokens (the injector's projected `istio-token` volume)
MESH_AUDIENCE = "istio-ca"
_SA_PREFIX = "system:serviceaccount:"


class TokenRejected(ValueError):
    """The token is missing, malformed, not valid, or not for the mesh's audience."""


class ReviewUnavailable(ConnectionError):
    """The API server could not be asked."""


def parse_username(username: str) -> tuple[str, str]:
    """(namespace, service account) of `system:serviceaccount:<ns>:<name>`."""
    if not username.startswith(_SA_PREFIX):
        raise TokenRejected(f"token is not a service-account token (user {username!r})")
    namespace, _, name = username[len(_SA_PREFIX) :].partition(":")
    if not namespace or not name or ":" in name:
        raise TokenRejected(f"malformed service-account username {username!r}")
    return namespace, name


def bearer(header: str | None) -> str:
    if not header:
        raise TokenRejected("no authorization metadata")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("authorization must be 'Bearer <token>'")
    return token.strip()


def token_expiry(token: str) -> float | None:
    """The `exp` claim (unix time) of a JWT, read without checking the signature (it only
    shortens how long a review is cached); None if `token` is no JWT or has none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


class TokenReviewer:
    def __init__(
        self,
        client: KubeClient,
        audience: str = MESH_AUDIENCE,
        *,
        cache_s: float = 300.0,
        cache_size: int = 10_000,
    ) -> None:
        self.client = client
        self.audience = audience
        self.cache_s = cache_s
        self.cache_size = cache_size
        self.reviews = 0
        self._cache: OrderedDict[bytes, tuple[float, tuple[str, str]]] = OrderedDict()

    async def authenticate(self, header: str | None) -> tuple[str, str]:
        """(namespace, service account) the token in `header` belongs to."""
        token = bearer(header)
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        identity = await self._review(token)
        keep = self.cache_s
        expiry = token_expiry(token)
        if expiry is not None:
            keep = min(keep, max(0.0, expiry - time.time()))
        self._cache[digest] = (now + keep, identity)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return identity

    async def _review(self, token: str) -> tuple[str, str]:
        self.reviews += 1
        review = TokenReview(spec=TokenReviewSpec(token=token, audiences=[self.audience]))
        try:
            answer = await self.client.call(self.client.typed.create(review))
        except KubeError as err:
            log.warning("TokenReview failed: %s", err)
            raise ReviewUnavailable(f"cannot review the token: {err}") from None
        status = answer.status
        if status is None or not status.authenticated:
            why = status.error if status is not None and status.error else "not authenticated"
            raise TokenRejected(f"token refused by the API server: {why}")
        if self.audience not in (status.audiences or ()):
            raise TokenRejected(f"token is not for audience {self.audience!r}")
        username = status.user.username if status.user is not None else None
        return parse_username(username or "")
