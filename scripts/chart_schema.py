"""Write the `targets` part of helm/hemostat/values.schema.json from the config model.

The chart checks a target's keys at install time, so a typo (`deploy_rep:`) fails `helm install`
with the key named instead of rendering and CrashLooping. Derived from agent.model.targets.TargetSpec
(pydantic's JSON schema): every object closed (`additionalProperties: false`) with its keys and
their JSON types; value rules (ranges, patterns) stay the daemon's, which `hemostat config check`
reports. Run after changing TargetSpec: `python scripts/chart_schema.py`; tests/helm/test_chart_schema.py
fails while the file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "helm" / "hemostat" / "values.schema.json"
KEEP = ("type", "properties", "additionalProperties", "items", "anyOf", "required", "enum", "description")


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every $ref replaced by its definition and only the structural keywords kept."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        out = _inline(defs[name], defs)
        if name == "UrlRef":  # `url: https://...` is written inline as a string
            return {"anyOf": [{"type": "string"}, out]}
        return out
    out = {}
    for key in KEEP:
        if key not in node:
            continue
        value = node[key]
        if key == "properties":
            out[key] = {k: _inline(v, defs) for k, v in value.items()}
        elif key in ("items", "anyOf", "additionalProperties"):
            out[key] = _inline(value, defs)
        else:
            out[key] = value
    if "anyOf" in out and any(o == {"type": "null"} for o in out["anyOf"]):
        rest = [o for o in out["anyOf"] if o != {"type": "null"}]
        out["anyOf"] = [*rest, {"type": "null"}]
    return out


def targets_schema() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from agent.model.targets import TargetSpec

    schema = TargetSpec.model_json_schema()
    item = _inline(schema, schema.get("$defs", {}))
    item.pop("description", None)
    item["required"] = ["name"]
    # the two the chart itself reads (RBAC names, namespaces), checked in full here
    item["properties"]["name"] = {"type": "string", "pattern": "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", "maxLength": 63}
    item["properties"]["namespace"] = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                       "maxLength": 63}
    return {"type": "array", "items": item,
            "description": "hemostat.yaml targets: every key checked here (scripts/chart_schema.py), "
                           "every value by the daemon and `hemostat config check`"}


def main() -> None:
    values = json.loads(SCHEMA.read_text())
    values["properties"]["targets"] = targets_schema()
    SCHEMA.write_text(json.dumps(values, indent=2) + "\n")


if __name__ == "__main__":
    main()
