"""Protobuf wire format by hand, for the few places where bytes are joined, not built.

A message that is mostly pre-serialized parts (a route table of cached virtual hosts, a
discovery response of cached resources) is cheaper to concatenate than to rebuild as
objects and serialize again. Only length-delimited fields are needed. Fields must be written
in field-number order to equal protobuf's deterministic serialization (tests check that).
"""

from __future__ import annotations

_LEN = 2  # wire type: length-delimited


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (bytes, string, embedded message)."""
    return varint((number << 3) | _LEN) + varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    """A string field, left out when empty (proto3 default)."""
    return field(number, value.encode()) if value else b""
