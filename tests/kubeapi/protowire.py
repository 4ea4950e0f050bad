"""Just enough Kubernetes protobuf to read the review requests real kubectl sends.

`kubectl auth can-i` and `kubectl auth whoami` post their reviews as protobuf only (no JSON
fallback on 415), so the fake decodes those few messages: the `k8s\\0` envelope (a
runtime.Unknown whose `raw` is the object), then the review's spec, by field number, from the
generated.proto files of k8s.io/api/authentication/v1 and authorization/v1. Answers stay JSON,
which kubectl accepts.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
# field number -> (JSON name, how to read it): "s" string, "ss" repeated string, "map" a
# map<string, ExtraValue>, or a nested schema.
RESOURCE = {1: ("namespace", "s"), 2: ("verb", "s"), 3: ("group", "s"), 4: ("version", "s"),
            5: ("resource", "s"), 6: ("subresource", "s"), 7: ("name", "s")}
NON_RESOURCE = {1: ("path", "s"), 2: ("verb", "s")}
ACCESS_SPEC = {1: ("resourceAttributes", RESOURCE), 2: ("nonResourceAttributes", NON_RESOURCE),
               3: ("user", "s"), 4: ("groups", "ss"), 5: ("extra", "map"), 6: ("uid", "s")}
TOKEN_SPEC = {1: ("token", "s"), 2: ("audiences", "ss")}
REVIEWS = {"SelfSubjectAccessReview": ACCESS_SPEC, "SubjectAccessReview": ACCESS_SPEC,
           "LocalSubjectAccessReview": ACCESS_SPEC, "TokenReview": TOKEN_SPEC, "SelfSubjectReview": {}}
Schema = dict[int, tuple[str, Any]]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, value) pairs: bytes for length-delimited fields, int for varints."""
    out: list[tuple[int, bytes | int]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            out.append((number, value))
        elif wire == 2:
            size, at = _varint(data, at)
            out.append((number, data[at:at + size]))
            at += size
        else:  # fixed 32/64-bit: none in these messages; skip them
            at += 8 if wire == 1 else 4
    return out


def _read(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in fields(data):
        if number not in schema or not isinstance(value, bytes):
            continue
        name, how = schema[number]
        if how == "s":
            out[name] = value.decode()
        elif how == "ss":
            out.setdefault(name, []).append(value.decode())
        elif how == "map":
            entry = dict(fields(value))
            items = [v.decode() for n, v in fields(entry.get(2, b"")) if n == 1 and isinstance(v, bytes)]
            out.setdefault(name, {})[bytes(entry.get(1, b"")).decode()] = items
        else:
            out[name] = _read(value, how)
    return out


def decode_review(body: bytes) -> dict[str, Any]:
    """A protobuf review request as the JSON document it stands for."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf envelope")
    unknown = dict(fields(body[len(MAGIC):]))
    type_meta = dict(fields(bytes(unknown.get(1, b""))))
    kind = bytes(type_meta.get(2, b"")).decode()
    if kind not in REVIEWS:
        raise ValueError(f"no protobuf decoding for kind {kind!r}")
    obj = dict(fields(bytes(unknown.get(2, b""))))
    spec = _read(bytes(obj.get(2, b"")), REVIEWS[kind]) if REVIEWS[kind] else {}
    return {"apiVersion": bytes(type_meta.get(1, b"")).decode(), "kind": kind, "spec": spec}
