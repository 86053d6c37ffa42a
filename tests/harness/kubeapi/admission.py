"""Admission webhooks: the registered Mutating/ValidatingWebhookConfigurations, called over HTTPS.

For a CREATE or UPDATE, every webhook whose rules, namespaceSelector and objectSelector match
gets an ``admission.k8s.io/v1`` AdmissionReview. Mutating webhooks run first, in configuration
name order, and their base64 JSONPatch is applied; validating webhooks then see the final
object. A webhook that cannot be called, times out or answers nonsense fails the request under
``failurePolicy: Fail`` (the default) and is skipped under ``Ignore``; a refusal carries the
webhook's message, as the real server words it. Service references are resolved through a map
the test sets (``(namespace, name) -> (host, port)``); the certificate is checked against the
``caBundle`` and the name ``<service>.<namespace>.svc``, as the real server checks it.

Not emulated: matchConditions (CEL), reinvocationPolicy, matchPolicy: Equivalent.
"""

from __future__ import annotations

import base64
import contextvars
import json
import ssl
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp

from .errors import ApiError
from .objects import clone
from .patches import json_patch
from .resources import ResourceType
from .selectors import label_selector_object

if TYPE_CHECKING:
    from .store import Store

Obj = dict[str, Any]
_GROUP = "admissionregistration.k8s.io"
_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "admission_warnings", default=None
)


class WebhookCallError(Exception):
    pass


@dataclass(frozen=True)
class Attributes:
    """What admission is asked about (apiserver's admission.Attributes)."""

    op: str  # CREATE, UPDATE
    rt: ResourceType
    obj: Obj
    old: Obj | None
    user: Obj
    dry_run: bool
    sub: str = ""


def _rule_matches(rule: Obj, op: str, rt: ResourceType, sub: str) -> bool:
    if not {op, "*"} & set(rule.get("operations") or ()):
        return False
    if not {rt.group, "*"} & set(rule.get("apiGroups") or ()):
        return False
    if not {rt.version, "*"} & set(rule.get("apiVersions") or ()):
        return False
    scope = rule.get("scope", "*")
    if scope == "Namespaced" and not rt.namespaced:
        return False
    if scope == "Cluster" and rt.namespaced:
        return False
    want = f"{rt.plural}/{sub}" if sub else rt.plural
    for res in rule.get("resources") or ():
        if res in ("*/*", want):
            return True
        if res == "*" and not sub:
            return True
        if sub and res == f"*/{sub}":
            return True
        if sub and res == f"{rt.plural}/*":
            return True
    return False


class Admission:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Where a webhook's service reference goes: (namespace, name) -> (host, port).
        self.service_addresses: dict[tuple[str, str], tuple[str, int]] = {}
        self.calls: list[Obj] = []  # every AdmissionReview request sent, for tests to read

    def begin_request(self) -> None:
        _warnings.set([])

    def take_warnings(self) -> list[str]:
        out = _warnings.get() or []
        _warnings.set([])
        return out

    def _configs(self, mutating: bool) -> list[Obj]:
        plural = "mutatingwebhookconfigurations" if mutating else "validatingwebhookconfigurations"
        bucket = self.store.bucket((_GROUP, plural))
        return [bucket[k] for k in sorted(bucket)]

    def _namespace_labels(self, rt: ResourceType, obj: Obj) -> dict[str, str] | None:
        if rt.kind == "Namespace" and not rt.group:
            return dict((obj.get("metadata") or {}).get("labels") or {})
        if not rt.namespaced:
            return None
        ns = (obj.get("metadata") or {}).get("namespace", "")
        found = self.store.bucket(("", "namespaces")).get(("", ns))
        return dict(((found or {}).get("metadata") or {}).get("labels") or {})

    def _matches(self, hook: Obj, a: Attributes) -> bool:
        if not any(_rule_matches(r, a.op, a.rt, a.sub) for r in hook.get("rules") or ()):
            return False
        ns_labels = self._namespace_labels(a.rt, a.obj)
        if ns_labels is not None and not label_selector_object(hook.get("namespaceSelector"))(
            ns_labels
        ):
            return False
        obj_sel = label_selector_object(hook.get("objectSelector"))
        candidates = [o for o in (a.obj, a.old) if o is not None]
        return any(obj_sel((o.get("metadata") or {}).get("labels") or {}) for o in candidates)

    async def admit(self, a: Attributes, *, mutating: bool) -> Obj:
        """The object after the matching webhooks (mutating or validating ones) saw it."""
        if a.rt.group == _GROUP or a.rt.ephemeral:
            return a.obj  # webhooks are never called for webhook configurations themselves
        for config in self._configs(mutating):
            for hook in config.get("webhooks") or ():
                if self._matches(hook, a):
                    a = replace(a, obj=await self._call(hook, a, mutating))
        return a.obj

    def _request(self, a: Attributes) -> Obj:
        rt, obj = a.rt, a.obj
        meta = obj.get("metadata") or {}
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        gvr = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        req: Obj = {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": meta.get("name", ""),
            "operation": a.op,
            "userInfo": a.user,
            "object": obj,
            "oldObject": a.old,
            "dryRun": a.dry_run,
            "options": {"kind": f"{a.op.capitalize()}Options", "apiVersion": "meta.k8s.io/v1"},
        }
        if a.sub:
            req["subResource"] = a.sub
        if rt.namespaced:
            req["namespace"] = meta.get("namespace", "")
        return req

    async def _call(self, hook: Obj, a: Attributes, mutating: bool) -> Obj:
        name, obj = hook.get("name", ""), a.obj
        request = self._request(a)
        self.calls.append(request)
        try:
            response = await self._post(hook, request)
            result = self._result(response, request["uid"])
        except WebhookCallError as e:
            return self._failed(hook, obj, f'failed calling webhook "{name}": {e}')
        if not result.get("allowed"):
            raise _denied(name, result.get("status"))
        warnings = _warnings.get()
        if warnings is not None:
            warnings.extend(str(w) for w in result.get("warnings") or ())
        if mutating and result.get("patch"):
            # A patch that does not apply is the server's internal error whatever the
            # failurePolicy (it is not a failure to call the webhook).
            if result.get("patchType") != "JSONPatch":
                raise ApiError.internal(f"unsupported patch type {result.get('patchType')!r}")
            try:
                ops = json.loads(base64.b64decode(result["patch"]))
                obj = json_patch(clone(obj), ops)
            except (ValueError, ApiError) as e:
                raise ApiError.internal(
                    f'webhook "{name}" returned a patch that does not apply: {e}'
                ) from None
        return obj

    def _failed(self, hook: Obj, obj: Obj, message: str) -> Obj:
        if hook.get("failurePolicy", "Fail") == "Ignore":
            return obj
        raise ApiError.internal(message)

    def _result(self, review: Any, uid: str) -> Obj:
        if not isinstance(review, dict) or not isinstance(review.get("response"), dict):
            raise WebhookCallError("the webhook's answer has no response")
        if (
            review.get("kind") != "AdmissionReview"
            or review.get("apiVersion") != "admission.k8s.io/v1"
        ):
            raise WebhookCallError(
                f"expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got "
                f"{review.get('apiVersion')}, Kind={review.get('kind')}"
            )
        result: Obj = review["response"]
        if result.get("uid") != uid:
            raise WebhookCallError(f"expected response.uid={uid!r}, got {result.get('uid')!r}")
        return result

    async def _post(self, hook: Obj, request: Obj) -> Any:
        cc = hook.get("clientConfig") or {}
        if "v1" not in (hook.get("admissionReviewVersions") or ()):
            raise WebhookCallError("webhook does not accept v1 AdmissionReview")
        ctx = ssl.create_default_context()
        if cc.get("caBundle"):
            try:
                ctx.load_verify_locations(cadata=base64.b64decode(cc["caBundle"]).decode())
            except (ValueError, ssl.SSLError) as e:
                raise WebhookCallError(f"bad caBundle: {e}") from None
        server_hostname = None
        if cc.get("url"):
            url = str(cc["url"])
        elif cc.get("service"):
            svc = cc["service"]
            where = self.service_addresses.get((svc.get("namespace", ""), svc.get("name", "")))
            if where is None:
                raise WebhookCallError(
                    f'service "{svc.get("name")}.{svc.get("namespace")}.svc" has no address '
                    "(the test did not map it)"
                )
            url = f"https://{where[0]}:{where[1]}{svc.get('path', '')}"
            server_hostname = f"{svc.get('name')}.{svc.get('namespace')}.svc"
        else:
            raise WebhookCallError("clientConfig has neither url nor service")
        timeout = aiohttp.ClientTimeout(total=float(hook.get("timeoutSeconds") or 10))
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    url,
                    json=body,
                    ssl=ctx,
                    server_hostname=server_hostname,
                    headers={"Accept": "application/json"},
                ) as resp,
            ):
                if resp.status != 200:
                    raise WebhookCallError(f"the server responded with HTTP {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise WebhookCallError(f"failed to call webhook: Post {url!r}: {e}") from None


def _denied(name: str, result: Any) -> ApiError:
    """apiserver's webhookerrors.ToStatusErr."""
    st: Obj = dict(result) if isinstance(result, dict) else {}
    denied = f'admission webhook "{name}" denied the request'
    code = int(st.get("code") or 0)
    code = max(code, 400)
    if st.get("message"):
        msg = f"{denied}: {st['message']}"
    elif st.get("reason"):
        msg = f"{denied}: {st['reason']}"
    else:
        msg = f"{denied} without explanation"
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": msg, "code": code}  # fmt: skip
    if st.get("reason"):
        body["reason"] = st["reason"]
    if st.get("details"):
        body["details"] = st["details"]
    return ApiError(body)
