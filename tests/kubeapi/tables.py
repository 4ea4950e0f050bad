"""Server-side printing: a ``meta.k8s.io/v1`` ``Table`` when the client asks for one.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` and prints
the columns the server returns (``-o wide`` adds those of priority 1). Rows carry the object as
``PartialObjectMetadata`` (``includeObject=Metadata``, the default), the whole object
(``Object``) or nothing (``None``). Custom resources print ``Name``, their additional printer
columns (simple ``.a.b`` JSON paths) and ``Age``, as a CRD does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.kubeapi.errors import bad_request
from tests.kubeapi.printers import AGE, NAME, PRINTERS, UNNAMED, Column, age, now_utc
from tests.kubeapi.resources import ResourceType

Obj = dict[str, Any]
TABLE_MEDIA = "as=table"


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for a meta.k8s.io/v1 Table before plain JSON."""
    for media in accept.lower().replace(" ", "").split(","):
        if TABLE_MEDIA in media and "g=meta.k8s.io" in media and "v=v1" in media.split(";"):
            return True
        if media.startswith("application/json") and TABLE_MEDIA not in media:
            return False
    return False


def _column(column: Column) -> Obj:
    name, kind, priority = column
    out: Obj = {"name": name, "type": kind, "format": "name" if column == NAME else "",
                "description": f"{name} of the object", "priority": priority}
    return out


def _json_path(obj: Any, path: str) -> Any:
    """A simple ``.a.b.0.c`` path (a number indexes a list)."""
    for part in path.strip(".").split("."):
        if isinstance(obj, list) and part.isdigit():
            obj = obj[int(part)] if int(part) < len(obj) else None
        elif isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def _columns_and_cells(rt: ResourceType, obj: Obj, now: datetime) -> tuple[list[Column],
                                                                            list[Any]]:
    name = obj["metadata"]["name"]
    if rt.custom:
        columns = [NAME] + [(c[0], c[1], 0) for c in rt.printer_columns] + [AGE]
        cells = [name] + [_json_path(obj, c[2]) for c in rt.printer_columns] + [age(obj, now)]
        return columns, cells
    printer = PRINTERS.get(rt.kind)
    if printer is None:
        return [NAME, ("Created At", "date", 0)], [name, obj["metadata"].get("creationTimestamp")]
    columns, row = printer
    if rt.kind in UNNAMED:
        return list(columns), row(obj, now)
    return [NAME, *columns], [name, *row(obj, now)]


def _row_object(rt: ResourceType, obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def to_table(rt: ResourceType, objects: list[Obj], list_meta: Obj, query: dict[str, str]
             ) -> Obj:
    """The Table for ``objects`` (already rendered in the requested version)."""
    include = query.get("includeObject") or "Metadata"
    if include not in ("None", "Metadata", "Object"):
        raise bad_request(f"includeObject: Unsupported value: {include!r}")
    now = now_utc()
    probe = objects[0] if objects else {"metadata": {"name": ""}}
    columns, _ = _columns_and_cells(rt, probe, now)
    rows = []
    for obj in objects:
        row: Obj = {"cells": _columns_and_cells(rt, obj, now)[1]}
        body = _row_object(rt, obj, include)
        if body is not None:
            row["object"] = body
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": [_column(c) for c in columns], "rows": rows}
