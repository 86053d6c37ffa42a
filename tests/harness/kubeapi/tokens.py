"""Service-account tokens: TokenRequest issues them, TokenReview checks them.

Tokens are real RS256 JWTs with the claims the real server writes (``iss``, ``sub``, ``aud``,
``exp``, ``kubernetes.io`` with namespace, service account and bound pod), signed by a key made
at start and published at ``/openid/v1/jwks``. Tests can also register opaque tokens with any
user and audiences. A review checks the token is known, not expired, bound to a pod that still
exists with the same uid, and meant for one of the requested audiences (the API server's own
when none are given) -- the rules the real authenticator applies.
"""

from __future__ import annotations

import base64
import datetime
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

Obj = dict[str, Any]
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class TokenInfo:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    audiences: tuple[str, ...] = (API_AUDIENCE,)
    expires: float | None = None  # unix time
    extra: dict[str, list[str]] = field(default_factory=dict)
    pod: tuple[str, str, str] | None = None  # (namespace, name, uid) the token is bound to

    def user(self) -> Obj:
        out: Obj = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = self.extra
        return out


def sa_groups(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")


class Tokens:
    def __init__(self, pod_uid: Callable[[str, str], str | None]) -> None:
        # pod_uid(namespace, name): the uid of that pod now, None when it does not exist.
        self._pod_uid = pod_uid
        self._tokens: dict[str, TokenInfo] = {}
        self._key: rsa.RSAPrivateKey | None = None
        self.issuer = API_AUDIENCE
        self.api_audiences: tuple[str, ...] = (API_AUDIENCE,)

    def add(self, token: str, info: TokenInfo) -> None:
        self._tokens[token] = info

    def lookup(self, token: str) -> TokenInfo | None:
        info = self._tokens.get(token)
        if info is None or (info.expires is not None and info.expires < time.time()):
            return None
        if info.pod is not None and self._pod_uid(info.pod[0], info.pod[1]) != info.pod[2]:
            return None
        return info

    def _signing_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._key

    def issue(
        self,
        namespace: str,
        service_account: str,
        audiences: tuple[str, ...] = (),
        expiration_seconds: int = 3600,
        *,
        sa_uid: str = "",
        pod: tuple[str, str] | None = None,
    ) -> str:
        """A JWT for ``system:serviceaccount:<ns>:<sa>``; ``pod`` = (name, uid) binds it."""
        auds = audiences or self.api_audiences
        now = int(time.time())
        claims: Obj = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "aud": list(auds),
            "iat": now,
            "nbf": now,
            "exp": now + expiration_seconds,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account, "uid": sa_uid},
            },
        }
        extra: dict[str, list[str]] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]
        }
        if pod is not None:
            claims["kubernetes.io"]["pod"] = {"name": pod[0], "uid": pod[1]}
            extra["authentication.kubernetes.io/pod-name"] = [pod[0]]
            extra["authentication.kubernetes.io/pod-uid"] = [pod[1]]
        token = jwt.encode(claims, self._signing_key(), algorithm="RS256", headers={"kid": "fake"})
        self.add(
            token,
            TokenInfo(
                username=claims["sub"],
                uid=sa_uid,
                groups=sa_groups(namespace),
                audiences=tuple(auds),
                expires=float(claims["exp"]),
                extra=extra,
                pod=(namespace, pod[0], pod[1]) if pod else None,
            ),
        )
        return token

    def review(self, obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        wanted = tuple(spec.get("audiences") or ()) or self.api_audiences
        info = self.lookup(str(spec.get("token") or ""))
        status: Obj
        if info is None:
            status = {
                "authenticated": False,
                "user": {},
                "error": "[invalid bearer token, token lookup failed]",
            }
        else:
            common = [a for a in wanted if a in info.audiences]
            if not common:
                status = {
                    "authenticated": False,
                    "user": {},
                    "error": f"[invalid bearer token, token audiences {list(info.audiences)!r} is "
                    f"invalid for the target audiences {list(wanted)!r}]",
                }
            else:
                status = {"authenticated": True, "user": info.user(), "audiences": common}
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def token_request(self, sa: Obj, body: Obj) -> Obj:
        meta = sa.get("metadata") or {}
        spec = dict(body.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or 3600)
        spec["expirationSeconds"] = seconds
        pod = None
        ref = spec.get("boundObjectRef") or {}
        if ref.get("kind") == "Pod":
            pod = (str(ref.get("name", "")), str(ref.get("uid", "")))
        token = self.issue(
            meta.get("namespace", ""),
            meta.get("name", ""),
            tuple(spec.get("audiences") or ()),
            seconds,
            sa_uid=str(meta.get("uid", "")),
            pod=pod,
        )
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                         "creationTimestamp": None},
            "spec": spec,
            "status": {"token": token,
                       "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }  # fmt: skip

    def openid_configuration(self, base_url: str) -> Obj:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base_url}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> Obj:
        numbers = self._signing_key().public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "fake",
                          "n": b64(numbers.n), "e": b64(numbers.e)}]}  # fmt: skip
