"""Kubernetes protobuf request bodies, for the few kinds kubectl writes that way.

kubectl's typed commands (``kubectl create namespace|configmap|secret|serviceaccount|token``)
send ``application/vnd.kubernetes.protobuf``: the magic ``k8s\\x00`` and a runtime.Unknown
envelope (typeMeta, raw) around the typed message. This decodes the envelope and, for the
kinds in ``_SCHEMAS``, the message into the same JSON the server would have got; any other
kind is 415, as before. Field numbers are those of k8s.io/api's generated.proto.
"""

from __future__ import annotations

import base64
from typing import Any

from .errors import ApiError

Obj = dict[str, Any]
MAGIC = b"k8s\x00"

# field number -> (JSON name, type); types: str, bytes, int, bool, a nested schema name,
# "map" (string -> string), "bmap" (string -> base64 bytes), and "[]" + type for repeated.
_SCHEMAS: dict[str, dict[int, tuple[str, str]]] = {
    "ObjectMeta": {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
                   5: ("uid", "str"), 6: ("resourceVersion", "str"), 11: ("labels", "map"),
                   12: ("annotations", "map"), 13: ("ownerReferences", "[]OwnerReference"),
                   14: ("finalizers", "[]str")},
    "OwnerReference": {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"),
                       5: ("apiVersion", "str"), 6: ("controller", "bool"),
                       7: ("blockOwnerDeletion", "bool")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map"), 3: ("binaryData", "bmap"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "bmap"), 3: ("type", "str"),
               4: ("stringData", "map"), 5: ("immutable", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "[]str")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 3: ("imagePullSecrets", "[]LocalRef"),
                       4: ("automountServiceAccountToken", "bool")},
    "LocalRef": {1: ("name", "str")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {1: ("audiences", "[]str"), 3: ("boundObjectRef", "BoundRef"),
                         4: ("expirationSeconds", "int")},
    "BoundRef": {1: ("kind", "str"), 2: ("apiVersion", "str"), 3: ("name", "str"),
                 4: ("uid", "str")},
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "raw"), 3: ("contentEncoding", "str"),
                4: ("contentType", "str")},
    "TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "MapEntry": {1: ("key", "str"), 2: ("value", "raw")},
}  # fmt: skip


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _decode(buf: bytes, schema: str) -> Obj:
    fields = _SCHEMAS[schema]
    out: Obj = {}
    for number, value in _fields(buf):
        if number not in fields:
            continue  # timestamps, managedFields, status: the server owns them
        name, type_ = fields[number]
        repeated = type_.startswith("[]")
        base = type_[2:] if repeated else type_
        if base in ("map", "bmap"):
            assert isinstance(value, bytes)
            entry = _decode(value, "MapEntry")
            raw = entry.get("value", b"")
            text = base64.b64encode(raw).decode() if base == "bmap" else raw.decode()
            out.setdefault(name, {})[entry.get("key", "")] = text
            continue
        if base in ("str", "raw"):
            assert isinstance(value, bytes)
            item: Any = value.decode() if base == "str" else value
        elif base == "int":
            item = value
        elif base == "bool":
            item = bool(value)
        else:
            assert isinstance(value, bytes)
            item = _decode(value, base)
        if repeated:
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


def decode(body: bytes) -> Obj:
    """The JSON object a protobuf request body stands for; ApiError 415 when it cannot."""
    if not body.startswith(MAGIC):
        raise ApiError.unsupported_media("application/vnd.kubernetes.protobuf")
    try:
        envelope = _decode(body[len(MAGIC) :], "Unknown")
        type_meta = envelope.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        if kind not in _SCHEMAS or "metadata" not in {f[0] for f in _SCHEMAS[kind].values()}:
            raise ApiError.unsupported_media(f"application/vnd.kubernetes.protobuf ({kind})")
        obj = _decode(envelope.get("raw", b""), kind)
    except (ValueError, KeyError, TypeError, AttributeError, AssertionError) as e:
        raise ApiError.bad_request(f"the protobuf body could not be decoded: {e}") from None
    obj["apiVersion"] = type_meta.get("apiVersion", "")
    obj["kind"] = kind
    return obj
