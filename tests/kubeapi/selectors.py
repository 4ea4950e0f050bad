"""Label selectors (equality and set-based) and field selectors, as the apiserver parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.kubeapi.errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]
_SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside a ``(...)`` value set."""
    terms: list[str] = []
    depth, current = 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_TERM.match(term):
        key, op, raw = match.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_TERM.match(term):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_TERM.match(term):
        negate, key = match.groups()
        return lambda labels: (key in labels) != bool(negate)
    raise bad_request(f"unable to parse requirement: <nil>: Invalid value: {term.strip()!r}")


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda obj: True
    terms = [_label_term(t) for t in split_terms(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a field the apiserver indexes (missing fields read as empty)."""
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    current: Any = obj
    for part in path.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, bool):
        return "true" if current else "false"
    return "" if current is None else str(current)


def field_matcher(
    selector: str | None, supported: tuple[str, ...], aliases: Mapping[str, str] | None = None
) -> Matcher:
    if not selector:
        return lambda obj: True
    checks: list[tuple[str, bool, str]] = []
    for term in split_terms(selector):
        match = re.match(r"^\s*([\w.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if match is None:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        key, op, value = match.groups()
        if key not in supported:
            if set(supported) <= {"metadata.name", "metadata.namespace"}:  # apimachinery's default
                raise bad_request(f'"{key}" is not a known field selector: only "metadata.name", '
                                  '"metadata.namespace"')
            raise bad_request(f"field label not supported: {key}")  # kinds with their own conversion
        checks.append(((aliases or {}).get(key, key), op == "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, key) == value) != negate for key, negate, value in checks)

    return matches


def selector_string(label_selector: Mapping[str, Any]) -> str:
    """Render a ``LabelSelector`` object as the string form used in ``Scale.status.selector``."""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], expr.get("values") or []
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
        else:
            parts.append(key if op == "Exists" else f"!{key}")
    return ",".join(parts)


