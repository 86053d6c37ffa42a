"""AdmissionReview v1: reading a request, writing the response the API server expects.

Pure. The response echoes the request's `apiVersion`/`kind` and `uid`; a mutation is a
base64 JSON Patch (`patchType: JSONPatch`); a refusal carries a Status with the message
kubectl prints ("admission webhook ... denied the request: <message>").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoal.kube.objects import KubeObject, mapping, text

API_VERSION = "admission.k8s.io/v1"


class AdmissionError(ValueError):
    """The body is not an AdmissionReview v1 request."""


@dataclass(frozen=True)
class AdmissionRequest:
    api_version: str
    uid: str
    operation: str
    namespace: str
    group: str
    version: str
    kind: str
    object: dict[str, Any]
    dry_run: bool = False


def parse_review(body: object) -> AdmissionRequest:
    """The request of an AdmissionReview, or AdmissionError saying what is wrong."""
    if not isinstance(body, dict):
        raise AdmissionError("the body must be a JSON AdmissionReview object")
    if body.get("kind") != "AdmissionReview":
        raise AdmissionError(f"kind must be AdmissionReview, got {body.get('kind')!r}")
    api_version = text(body, "apiVersion")
    if api_version != API_VERSION:
        raise AdmissionError(f"apiVersion must be {API_VERSION}, got {api_version!r}")
    request = mapping(body, "request")
    uid = text(request, "uid")
    if not uid:
        raise AdmissionError("request.uid is missing")
    obj = request.get("object")
    kind = mapping(request, "kind")
    return AdmissionRequest(
        api_version=api_version,
        uid=uid,
        operation=text(request, "operation"),
        namespace=text(request, "namespace"),
        group=text(kind, "group"),
        version=text(kind, "version"),
        kind=text(kind, "kind"),
        object=dict(obj) if isinstance(obj, dict) else {},
        dry_run=request.get("dryRun") is True,
    )


def _review(request: AdmissionRequest, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": request.api_version,
        "kind": "AdmissionReview",
        "response": {"uid": request.uid, **response},
    }


def allow(
    request: AdmissionRequest,
    patch: Sequence[KubeObject] = (),
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Allowed, with a JSON Patch if `patch` has operations."""
    response: dict[str, Any] = {"allowed": True}
    if patch:
        encoded = json.dumps(list(patch), separators=(",", ":")).encode()
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(encoded).decode()
    if warnings:
        response["warnings"] = list(warnings)
    return _review(request, response)


def deny(
    request: AdmissionRequest, message: str, code: int = 400, warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """Refused with `message` (and `warnings` beside it)."""
    response: dict[str, Any] = {
        "allowed": False,
        "status": {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "message": message,
            "reason": "BadRequest" if code == 400 else "",
            "code": code,
        },
    }
    if warnings:
        response["warnings"] = list(warnings)
    return _review(request, response)


def decode_patch(review: KubeObject) -> list[dict[str, Any]]:
    """The JSON Patch of an AdmissionReview response (empty when there is none)."""
    raw = text(review, "response", "patch")
    if not raw:
        return []
    ops = json.loads(base64.b64decode(raw))
    return ops if isinstance(ops, list) else []
