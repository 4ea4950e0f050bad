"""Kubernetes protobuf request bodies, decoded to the JSON the rest of the fake works on.

kubectl sends ``application/vnd.kubernetes.protobuf`` for ``create deployment``, ``create
configmap`` and ``autoscale`` and does not fall back to JSON on a 415, so a server kubectl
can't tell apart must read them. The envelope and wire format are read by ``protowire`` (which
decodes kubectl's review requests the same way); messages are decoded by the field numbers in
``protobuf_fields.json``; the Go encoder writes every non-pointer field, so empty strings,
zeros and ``false`` are dropped as ``omitempty`` would (``replicas`` excepted: ``--replicas=0``
means zero). A kind without a table answers 415, as before.
"""

from __future__ import annotations

import base64
import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.kubeapi.errors import bad_request, unsupported_media_type
from tests.kubeapi.protowire import MAGIC, fields

FIELDS_FILE = Path(__file__).with_name("protobuf_fields.json")
ROOTS = {("apps/v1", "Deployment"): "apps.v1.Deployment", ("v1", "ConfigMap"): "core.v1.ConfigMap",
         ("autoscaling/v2", "HorizontalPodAutoscaler"): "autoscaling.v2.HorizontalPodAutoscaler",
         ("autoscaling/v1", "HorizontalPodAutoscaler"): "autoscaling.v1.HorizontalPodAutoscaler"}
KEEP_ZERO = frozenset({"replicas"})
Field = tuple[str, str, bool]  # name, type, repeated


@functools.cache
def schema() -> dict[str, dict[int, Field]]:
    raw: dict[str, str] = json.loads(FIELDS_FILE.read_text())
    tables: dict[str, dict[int, Field]] = {}
    for message, spec in raw.items():
        if message == "_":
            continue
        fields = (entry.split() for entry in spec.split("; "))
        tables[message] = {int(num): (name, kind.removesuffix("[]"), kind.endswith("[]"))
                           for num, name, kind in fields}
    return tables


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _special(kind: str, data: bytes) -> Any:
    parts = dict(fields(data))
    if kind == "meta.v1.Time":
        seconds = _signed(int(parts.get(1, 0)))
        return (datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if seconds else None)
    if kind == "intstr.IntOrString":
        return bytes(parts.get(3, b"")).decode() if parts.get(1) else _signed(int(parts.get(2, 0)))
    return bytes(parts.get(1, b"")).decode()  # resource.Quantity


def _scalar(kind: str, value: Any) -> Any:
    if kind == "s":
        return bytes(value).decode()
    if kind == "y":
        return base64.b64encode(bytes(value)).decode()
    if kind == "b":
        return bool(value)
    return _signed(int(value))


def _value(kind: str, value: Any) -> Any:
    if kind in ("s", "y", "b", "i"):
        return _scalar(kind, value)
    if kind in ("meta.v1.Time", "intstr.IntOrString", "resource.Quantity"):
        return _special(kind, value)
    if kind.startswith("map:"):
        entry = dict(fields(value))
        return bytes(entry.get(1, b"")).decode(), _value(kind[4:], entry.get(2, b""))
    return message(kind, value)


def _empty(name: str, value: Any) -> bool:
    return name not in KEEP_ZERO and value in ("", 0, False, None, {}, [])


def message(kind: str, data: bytes) -> dict[str, Any]:
    """One message as JSON, by its table; unknown fields are an error, not silently lost."""
    table = schema().get(kind)
    if table is None:
        raise unsupported_media_type()
    out: dict[str, Any] = {}
    for number, raw in fields(data):
        if number not in table:
            raise bad_request(f"protobuf: unknown field {number} in {kind}")
        name, field_kind, repeated = table[number]
        value = _value(field_kind, raw)
        if field_kind.startswith("map:"):
            out.setdefault(name, {})[value[0]] = value[1]
        elif repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return {k: v for k, v in out.items() if not _empty(k, v)}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object it encodes (415 for kinds not covered)."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf: the body does not start with the k8s magic number")
    unknown = dict(fields(body[len(MAGIC):]))
    type_meta = {n: bytes(v).decode() for n, v in fields(bytes(unknown.get(1, b"")))
                 if isinstance(v, bytes)}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    root = ROOTS.get((api_version, kind))
    if root is None:
        raise unsupported_media_type()
    return {"apiVersion": api_version, "kind": kind, **message(root, bytes(unknown.get(2, b"")))}
