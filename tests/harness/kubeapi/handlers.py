"""HTTP handlers: one catch-all that routes by path and verb, as the real server's mux does.

Reads (get, list, watch), writes (create, update, patch, delete, deletecollection) and the
non-resource paths (version, health, discovery, openapi). Write handlers run admission
between preparing the object and committing it, like the real request pipeline:
decode -> defaults -> mutating admission -> uid/timestamps -> validating admission -> store.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import traceback
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from . import discovery, protobuf, routing, scale, semantics, tables
from .admission import Attributes
from .encoding import BARE
from .errors import ApiError, success
from .errors import status as error_status
from .objects import clone
from .patches import apply_patch
from .selectors import parse_field_selector, parse_label_selector
from .store import Watcher, obj_rv, parse_rv
from .watch import WatchStream, bookmark

if TYPE_CHECKING:
    from .resources import ResourceType
    from .server import KubeAPIServer

Obj = dict[str, Any]
_TRUE = frozenset({"true", "True", "1", "TRUE"})


def truthy(value: str | None) -> bool:
    return value is not None and value in _TRUE


def _json(body: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": content_type, "Cache-Control": "no-cache, private"},
    )


def error_response(err: ApiError) -> web.Response:
    resp = _json(err.body, err.code)
    resp.headers.update(err.headers)
    return resp


def _check_accept(request: web.Request) -> None:
    accept = request.headers.get("Accept", "")
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "*/*", "application/*", "application/yaml", ""):
            return
        if media.startswith("application/json"):
            return
    raise ApiError.not_acceptable()


async def _body(srv: KubeAPIServer, request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    media = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    srv.body_types.append((request.path, media))
    if media == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(raw)
    if "protobuf" in media:
        raise ApiError.unsupported_media(media)
    try:
        if media == "application/yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise ApiError.bad_request(f"the request body is not valid JSON: {e}") from None


class Handlers:
    def __init__(self, srv: KubeAPIServer) -> None:
        self.srv = srv

    # -- entry -------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        srv = self.srv
        is_watch = truthy(request.query.get("watch")) or "/watch/" in request.path
        srv.requests.append((request.method, request.path_qs))
        srv.admission.begin_request()
        try:
            for fault in srv.faults.take(request.method, request.path, is_watch):
                if fault.action == "delay":
                    await asyncio.sleep(fault.seconds)
                elif fault.action == "error":
                    raise _fault_error(fault.code)
            user = srv.authenticate(request.headers.get("Authorization", ""))
            resp = await self._route(request, user)
        except ApiError as e:
            resp = error_response(e)
        except Exception as e:
            # A bug in the fake: say so in the answer and on stderr rather than a bare 500.
            traceback.print_exc()
            resp = error_response(ApiError.internal(f"fake API server bug: {e!r}"))
        if srv.settings.log_requests:
            print(f"{request.method} {request.path_qs} -> {resp.status}", flush=True)
        return resp

    async def _route(self, request: web.Request, user: Obj) -> web.StreamResponse:
        srv, path = self.srv, request.path
        stripped = path.rstrip("/") or "/"
        if stripped == "/version":
            return _json(srv.version_info())
        if stripped in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if stripped == "/openapi/v2":
            # An empty protobuf Document: kubectl's client-side validation finds no schema
            # and skips (no fieldValidation support advertised either).
            return web.Response(
                body=b"",
                headers={
                    "Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                },
            )
        if stripped == "/.well-known/openid-configuration":
            return _json(srv.tokens.openid_configuration(srv.url))
        if stripped == "/openid/v1/jwks":
            return _json(srv.tokens.jwks())
        if stripped == "/":
            return _json({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz",
                                    "/version"]})  # fmt: skip
        target = routing.parse(srv.registry, path)
        if target is None:
            raise ApiError.no_route()
        _check_accept(request)
        if isinstance(target, routing.GroupVersion):
            if request.method != "GET":
                raise ApiError.method_not_allowed()
            return self._discovery(request, target)
        return await self._resource(request, target, user)

    def _discovery(self, request: web.Request, gv: routing.GroupVersion) -> web.Response:
        srv = self.srv
        if gv.version is None and gv.group in ("", "*"):
            agg = discovery.aggregated_version(request.headers.get("Accept", ""))
            if agg and srv.settings.aggregated_discovery:
                ctype = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                return _json(discovery.aggregated(srv.registry, gv.group == "", agg), 200, ctype)
            if gv.group == "":
                return _json(discovery.api_versions(srv.address))
            return _json(discovery.api_group_list(srv.registry))
        if gv.version is None:
            doc = discovery.api_group(srv.registry, gv.group)
        else:
            doc = discovery.api_resource_list(srv.registry, gv.group, gv.version)
        if doc is None:
            raise ApiError.no_route()
        return _json(doc)

    # -- resources ---------------------------------------------------------------------------

    async def _resource(
        self, request: web.Request, t: routing.Target, user: Obj
    ) -> web.StreamResponse:
        method, q = request.method, request.query
        verb_ok = set(t.rt.verbs)
        if t.subresource and not (
            (t.subresource == "status" and t.rt.status)
            or (t.subresource == "scale" and t.rt.scale)
            or (t.subresource == "token" and t.rt.kind == "ServiceAccount" and not t.rt.group)
        ):
            raise ApiError.no_route()
        if t.namespace is not None and self.srv.settings.check_namespaces and method != "GET":
            self._namespace_open(t.namespace, method)
        if method == "GET":
            if t.name is None or t.legacy_watch or truthy(q.get("watch")):
                if "watch" not in verb_ok and "list" not in verb_ok:
                    raise ApiError.method_not_allowed()
                return await self._list_or_watch(request, t)
            if t.subresource == "scale":
                return _json(
                    scale.to_scale(t.rt, self.srv.store.get(t.rt, t.namespace or "", t.name))
                )
            return self._get(request, t)
        if method == "POST":
            if t.subresource == "token":
                return _json(await self._token_request(request, t), 201)
            if t.name is not None or "create" not in verb_ok:
                raise ApiError.method_not_allowed()
            return await self._create(request, t, user)
        if t.name is None:
            if method == "DELETE" and "deletecollection" in verb_ok:
                return await self._delete_collection(request, t)
            raise ApiError.method_not_allowed()
        if t.subresource == "scale" and method in ("PUT", "PATCH"):
            return await self._scale(request, t)
        if method == "PUT":
            return await self._update(request, t, user)
        if method == "PATCH":
            return await self._patch(request, t, user)
        if method == "DELETE":
            return await self._delete(request, t)
        raise ApiError.method_not_allowed()

    def _namespace_open(self, namespace: str, method: str) -> None:
        ns_rt = self.srv.ns_type
        ns = self.srv.store.find(ns_rt, "", namespace)
        if ns is None:
            raise ApiError.not_found("", "namespaces", namespace)
        if method == "POST" and (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise ApiError(
                {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"unable to create new content in namespace {namespace} because "
                    "it is being terminated",
                    "reason": "Forbidden", "code": 403,
                    "details": {"name": namespace, "kind": "namespaces"},
                }
            )  # fmt: skip

    def _render(self, rt: ResourceType, obj: Obj) -> Obj:
        if obj.get("apiVersion") != rt.api_version:
            obj = {**obj, "apiVersion": rt.api_version}
        return obj

    def _get(self, request: web.Request, t: routing.Target) -> web.Response:
        assert t.name is not None
        obj = self._render(t.rt, self.srv.store.get(t.rt, t.namespace or "", t.name))
        if tables.wants_table(request.headers.get("Accept", "")):
            meta = {"resourceVersion": obj_rv(obj)}
            include = request.query.get("includeObject", "Metadata")
            return _json(tables.table(t.rt, [obj], meta, include))
        return _json(obj)

    def _matcher(self, request: web.Request, t: routing.Target) -> Any:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), t.rt.kind)
        name = t.name

        def matches(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if name is not None and meta.get("name") != name:
                return False
            return labels(meta.get("labels") or {}) and fields(obj)

        return matches

    async def _list_or_watch(self, request: web.Request, t: routing.Target) -> web.StreamResponse:
        q, srv = request.query, self.srv
        matches = self._matcher(request, t)
        table = tables.wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        if truthy(q.get("watch")) or t.legacy_watch:
            return await self._watch(request, t, matches, table, include)
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise ApiError.bad_request(f"invalid limit: {q.get('limit')!r}") from None
        items, meta = srv.store.list(
            t.rt,
            t.namespace,
            matches,
            limit=max(limit, 0),
            cont=q.get("continue", ""),
            resource_version=q.get("resourceVersion", ""),
            match=q.get("resourceVersionMatch", ""),
            selective=bool(q.get("labelSelector") or q.get("fieldSelector")),
        )
        if table:
            return _json(tables.table(t.rt, [self._render(t.rt, o) for o in items], meta, include))
        # Built-in list items carry no kind/apiVersion, as the real server's typed encoders
        # write them; clients must not depend on them. Custom resources' items do.
        form = t.rt.api_version if t.rt.from_crd else BARE
        enc = srv.encodings
        head = {"kind": t.rt.list_kind, "apiVersion": t.rt.api_version, "metadata": meta}
        body = b"".join((
            json.dumps(head, separators=(",", ":"))[:-1].encode(),
            b',"items":[',
            b",".join(enc.encode(t.rt.key, o, form) for o in items),
            b"]}",
        ))  # fmt: skip
        return web.Response(
            body=body,
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"},
        )

    async def _watch(
        self, request: web.Request, t: routing.Target, matches: Any, table: bool, include: str
    ) -> web.StreamResponse:
        q, srv, rt = request.query, self.srv, t.rt
        rv_text = q.get("resourceVersion", "")
        bookmarks = truthy(q.get("allowWatchBookmarks"))
        initial = truthy(q.get("sendInitialEvents"))
        if initial and (not bookmarks or q.get("resourceVersionMatch") != "NotOlderThan"):
            raise ApiError.invalid(
                "sendInitialEvents requires setting allowWatchBookmarks=true and "
                "resourceVersionMatch=NotOlderThan",
                "", "", "", "sendInitialEvents",
            )  # fmt: skip
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        except ValueError:
            raise ApiError.bad_request("invalid timeoutSeconds") from None
        if timeout is None:
            timeout = srv.settings.default_watch_timeout

        def render(type_: str, obj: Obj) -> bytes:
            if type_ in ("ERROR", "BOOKMARK"):
                return json.dumps(obj).encode()
            if table:
                obj = self._render(rt, obj)
                tab = tables.table(rt, [obj], {"resourceVersion": obj_rv(obj)}, include)
                return json.dumps(tab).encode()
            return srv.encodings.encode(rt.key, obj, rt.api_version)

        stream = WatchStream(rt, render, lambda: srv.store.rv)
        watcher = Watcher(rt, t.namespace, matches, stream)
        # No RV (or "0", or a watch-list): the current state as ADDED, then the changes.
        since = None if initial or rv_text in ("", "0") else parse_rv(rv_text)
        try:
            srv.store.subscribe(watcher, since)
        except ApiError as e:
            if e.code != 410:
                raise
            # The real server answers 200 and an ERROR event, not an HTTP 410.
            stream.fail(e.body)
        else:
            if initial:
                stream.deliver("BOOKMARK", bookmark(rt, srv.store.rv, initial_end=True))
        srv.streams.add(stream)
        try:
            return await stream.run(
                request, timeout, srv.settings.bookmark_interval if bookmarks else None
            )
        finally:
            srv.streams.discard(stream)
            srv.store.unsubscribe(watcher)

    # -- writes ------------------------------------------------------------------------------

    async def _create(self, request: web.Request, t: routing.Target, user: Obj) -> web.Response:
        srv, rt = self.srv, t.rt
        body = await _body(self.srv, request)
        obj = semantics.check_body(rt, body, t.namespace or "")
        if rt.ephemeral:
            return _json(srv.tokens.review(obj), 201)
        obj = semantics.prepare_create(rt, obj)
        if srv.store.find(rt, t.namespace or "", obj["metadata"]["name"]) is not None:
            raise ApiError.already_exists(rt.group, rt.plural, obj["metadata"]["name"])
        dry = request.query.get("dryRun") == "All"
        attrs = Attributes("CREATE", rt, obj, None, user, dry)
        obj = await srv.admission.admit(attrs, mutating=True)
        semantics.stamp(obj)
        obj = await srv.admission.admit(replace(attrs, obj=obj), mutating=False)
        if dry:
            return _json(obj, 201)
        stored = srv.store.create(rt, obj)
        return self._written(rt, stored, 201, request)

    def _written(self, rt: ResourceType, obj: Obj, code: int, request: web.Request) -> web.Response:
        resp = _json(self._render(rt, obj), code)
        for w in self.srv.admission.take_warnings():
            resp.headers.add("Warning", f'299 - "{w}"')
        return resp

    async def _update(self, request: web.Request, t: routing.Target, user: Obj) -> web.Response:
        srv, rt = self.srv, t.rt
        assert t.name is not None
        body = await _body(self.srv, request)
        new = semantics.check_body(rt, body, t.namespace or "", t.name)
        old = srv.store.get(rt, t.namespace or "", t.name)
        expect = obj_rv(new) or None
        if expect and expect != obj_rv(old):
            raise ApiError.stale(rt.group, rt.plural, t.name)
        return await self._commit_update(request, t, old, new, user)

    async def _commit_update(
        self, request: web.Request, t: routing.Target, old: Obj, new: Obj, user: Obj
    ) -> web.Response:
        srv, rt, expect = self.srv, t.rt, obj_rv(old)
        obj = semantics.prepare_update(rt, old, new, t.subresource)
        dry = request.query.get("dryRun") == "All"
        if not t.subresource:
            attrs = Attributes("UPDATE", rt, obj, old, user, dry)
            obj = await srv.admission.admit(attrs, mutating=True)
            obj = semantics.prepare_update(rt, old, obj)
            obj = await srv.admission.admit(replace(attrs, obj=obj), mutating=False)
        if dry:
            return _json(self._render(rt, obj))
        obj["metadata"]["resourceVersion"] = expect
        stored = srv.store.update(rt, obj, expect)
        meta = stored["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rt.kind != "Namespace":
            srv.store.remove(rt, t.namespace or "", t.name or "")
        return self._written(rt, stored, 200, request)

    async def _patch(self, request: web.Request, t: routing.Target, user: Obj) -> web.Response:
        srv, rt = self.srv, t.rt
        assert t.name is not None
        ctype = request.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip() == "application/apply-patch+yaml":
            raise ApiError.unsupported_media("application/apply-patch+yaml")
        patch = await _body(self.srv, request)
        for attempt in range(3):
            old = srv.store.get(rt, t.namespace or "", t.name)
            patched = apply_patch(ctype, old, patch, rt.from_crd)
            if not isinstance(patched, dict):
                raise ApiError.bad_request("the patch did not produce an object")
            want = obj_rv(patched)
            if want and want != obj_rv(old):
                raise ApiError.stale(rt.group, rt.plural, t.name)
            new = semantics.check_body(rt, patched, t.namespace or "", t.name)
            try:
                return await self._commit_update(request, t, old, new, user)
            except ApiError as e:
                # Someone wrote in between (admission awaited): the real server retries too.
                if e.code != 409 or attempt == 2 or want:
                    raise
        raise AssertionError("unreachable")

    async def _scale(self, request: web.Request, t: routing.Target) -> web.Response:
        """PUT or PATCH of a Scale: only spec.replicas reaches the object."""
        rt, store = t.rt, self.srv.store
        assert t.name is not None
        old = store.get(rt, t.namespace or "", t.name)
        current = scale.to_scale(rt, old)
        body = await _body(self.srv, request)
        if request.method == "PUT":
            wanted = body if isinstance(body, dict) else {}
        else:
            wanted = apply_patch(request.headers.get("Content-Type", ""), current, body, False)
        want_rv = obj_rv(wanted)
        if want_rv and want_rv != obj_rv(old):
            raise ApiError.stale(rt.group, rt.plural, t.name)
        try:
            replicas = int((wanted.get("spec") or {}).get("replicas", 0))
        except (TypeError, ValueError):
            raise ApiError.invalid("spec.replicas must be an integer", "autoscaling", "Scale",
                                   t.name, "spec.replicas") from None  # fmt: skip
        new = semantics.prepare_update(rt, old, scale.with_replicas(rt, old, replicas))
        stored = store.update(rt, new, obj_rv(old))
        return _json(scale.to_scale(rt, stored))

    def _delete_options(self, request: web.Request, body: Any) -> Obj:
        opts: Obj = dict(body) if isinstance(body, dict) else {}
        q = request.query
        if "gracePeriodSeconds" in q:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if q.get("dryRun") == "All":
            opts["dryRun"] = ["All"]
        return opts

    async def _delete(self, request: web.Request, t: routing.Target) -> web.Response:
        assert t.name is not None
        opts = self._delete_options(request, await _body(self.srv, request))
        code, body = self.delete_object(t.rt, t.namespace or "", t.name, opts)
        return _json(self._render(t.rt, body) if body.get("kind") != "Status" else body, code)

    def delete_object(
        self, rt: ResourceType, namespace: str, name: str, opts: Obj
    ) -> tuple[int, Obj]:
        """Delete honouring preconditions, finalizers and (optionally) pod grace periods."""
        store = self.srv.store
        obj = store.get(rt, namespace, name)
        meta = obj.get("metadata") or {}
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise ApiError.conflict(rt.group, rt.plural, name,
                                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                                    f"UID in object meta: {meta.get('uid')}")  # fmt: skip
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise ApiError.conflict(rt.group, rt.plural, name,
                                    "Precondition failed: ResourceVersion in precondition: "
                                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                    f"{meta.get('resourceVersion')}")  # fmt: skip
        if "All" in (opts.get("dryRun") or []):
            return 200, obj
        details = {"name": name, "kind": rt.plural, "uid": meta.get("uid")}
        if rt.group:
            details["group"] = rt.group
        graceful = self._grace(rt, obj, opts)
        if rt.kind == "Namespace" and not rt.group:
            return 200, self.srv.terminate_namespace(name)
        if meta.get("finalizers") or graceful:
            if meta.get("deletionTimestamp"):
                if graceful == 0 and not meta.get("finalizers"):
                    store.remove(rt, namespace, name)
                    return 200, success(details)
                return 200, obj
            new = clone(obj)
            when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=graceful)
            new["metadata"]["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            new["metadata"]["deletionGracePeriodSeconds"] = graceful
            return 200, store.update(rt, new, None)
        store.remove(rt, namespace, name)
        return 200, success(details)

    def _grace(self, rt: ResourceType, obj: Obj, opts: Obj) -> int:
        """Pods on a node wait for their kubelet (the test) when graceful deletion is on."""
        if not (rt.kind == "Pod" and not rt.group and self.srv.settings.graceful_pod_deletion):
            return 0
        if not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if "gracePeriodSeconds" in opts and opts["gracePeriodSeconds"] is not None:
            return max(int(opts["gracePeriodSeconds"]), 0)
        return int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    async def _delete_collection(self, request: web.Request, t: routing.Target) -> web.Response:
        opts = self._delete_options(request, await _body(self.srv, request))
        matches = self._matcher(request, t)
        items, _ = self.srv.store.list(t.rt, t.namespace, matches)
        for obj in items:
            meta = obj["metadata"]
            self.delete_object(t.rt, meta.get("namespace", ""), meta["name"], opts)
        return _json({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                      "metadata": {"resourceVersion": str(self.srv.store.rv)},
                      "items": items})  # fmt: skip

    async def _token_request(self, request: web.Request, t: routing.Target) -> Obj:
        assert t.name is not None and t.namespace is not None
        sa = self.srv.store.get(t.rt, t.namespace, t.name)
        body = await _body(self.srv, request) or {}
        return self.srv.tokens.token_request(sa, body)


def _fault_error(code: int) -> ApiError:
    if code == 500:
        return ApiError.internal("injected fault")
    if code == 429:
        err = ApiError(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": "Too many requests, please try again later.", "reason": "TooManyRequests",
             "code": 429, "details": {"retryAfterSeconds": 1}},
            {"Retry-After": "1"},
        )  # fmt: skip
        return err
    reason = "ServiceUnavailable" if code == 503 else "InternalError"
    return ApiError(error_status(code, reason, "injected fault"))
