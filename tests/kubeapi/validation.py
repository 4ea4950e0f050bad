"""Object validation: the Kubernetes JSON schemas shipped by ``kubernetes_validate`` plus the
few semantic rules every object meets (names, container images)."""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from tests.kubeapi.errors import bad_request, invalid
from tests.kubeapi.resources import ResourceType

# The Kubernetes release the fake plays: the kubectl that scripts/fetch-helm.sh fetches is of
# this minor, and the chart renders for it (tests/helm).
SCHEMA_VERSION = "1.35.0"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@functools.lru_cache(maxsize=64)
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{SCHEMA_VERSION}-local"
    try:
        schema = kv_utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", SCHEMA_VERSION)
    except FileNotFoundError:
        return None
    definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", SCHEMA_VERSION)
    registry: Registry[Any] = Resource.from_contents(definitions) @ (
        Resource.from_contents(schema) @ Registry()
    )
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(
        schema, registry=registry
    )
    return validator


def _field(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _cause(error: jsonschema.ValidationError) -> dict[str, str]:
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else "?"
        field = ".".join(p for p in (_field(error.absolute_path), name) if p)
        return {"reason": "FieldValueRequired", "message": "Required value", "field": field}
    if error.validator == "enum":
        allowed = ", ".join(f'"{v}"' for v in error.validator_value)
        return {"reason": "FieldValueNotSupported", "field": _field(error.absolute_path),
                "message": f'Unsupported value: "{error.instance}": supported values: {allowed}'}
    return {"reason": "FieldValueInvalid", "field": _field(error.absolute_path),
            "message": f"Invalid value: {error.instance!r}: {error.message}"}


def schema_causes(obj: dict[str, Any], rt: ResourceType) -> list[dict[str, str]]:
    """All schema violations; a wrong JSON type is a decoding error (400) as in the apiserver."""
    try:
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=False)
    except kubernetes_validate.SchemaNotFoundError:
        return []
    except kubernetes_validate.ValidationError:
        validator = _validator(rt.api_version, rt.kind)
        errors = list(validator.iter_errors(obj)) if validator is not None else []
        for error in errors:
            if error.validator == "type":
                raise bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"json: cannot unmarshal {type(error.instance).__name__} into Go struct "
                    f"field {rt.kind}.{_field(error.absolute_path)}"
                ) from None
        return [_cause(e) for e in sorted(errors, key=lambda e: _field(e.absolute_path))]
    return []


def _name_causes(obj: dict[str, Any]) -> list[dict[str, str]]:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        return [{"reason": "FieldValueRequired", "field": "metadata.name",
                 "message": "Required value: name or generateName is required"}]
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        return [{"reason": "FieldValueInvalid", "field": "metadata.name",
                 "message": f'Invalid value: "{name}": {SUBDOMAIN_MSG}'}]
    return []


def _image_causes(obj: dict[str, Any], rt: ResourceType) -> list[dict[str, str]]:
    spec = obj.get("spec") or {}
    prefix = "spec"
    if rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        spec, prefix = (spec.get("template") or {}).get("spec") or {}, "spec.template.spec"
    elif rt.kind != "Pod":
        return []
    causes = []
    for index, container in enumerate(spec.get("containers") or []):
        if isinstance(container, dict) and not container.get("image"):
            causes.append({"reason": "FieldValueRequired", "message": "Required value",
                           "field": f"{prefix}.containers[{index}].image"})
    return causes


def validate_object(obj: dict[str, Any], rt: ResourceType) -> None:
    """Raise the apiserver's 400/422 answer if ``obj`` would be rejected.

    ``status`` is owned by controllers and zero-filled by the Go types, so it is not checked.
    """
    if rt.custom:
        causes = _name_causes(obj)
    else:
        causes = [c for c in schema_causes(obj, rt) if not c["field"].startswith("status")]
        causes += _name_causes(obj) + _image_causes(obj, rt) + _event_causes(obj, rt)
    if causes:
        raise invalid(rt, str((obj.get("metadata") or {}).get("name", "")), causes)




def _event_causes(obj: dict[str, Any], rt: ResourceType) -> list[dict[str, str]]:
    """ValidateEvent (core/v1): a namespaced object's event lives in that object's namespace."""
    if rt.kind != "Event" or rt.group:
        return []
    involved, namespace = obj.get("involvedObject") or {}, (obj.get("metadata") or {}).get("namespace", "")
    if involved.get("kind") in CLUSTER_SCOPED_KINDS or involved.get("namespace", "") == namespace:
        return []
    return [{"reason": "FieldValueInvalid", "field": "involvedObject.namespace",
             "message": f'Invalid value: "{involved.get("namespace", "")}": does not match event.namespace'}]


CLUSTER_SCOPED_KINDS = frozenset({"Node", "Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
                                  "StorageClass", "CustomResourceDefinition"})
