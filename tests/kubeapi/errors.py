"""Kubernetes ``Status`` failure bodies, shaped like the real apiserver's."""

from __future__ import annotations

from typing import Any

from tests.kubeapi.resources import ResourceType

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a ``kind: Status`` body with the matching HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details.update(extra)
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, f'{rt.qualified} "{name}" not found', details=_details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, f'{rt.qualified} "{name}" already exists', "AlreadyExists", _details(rt, name)
    )


def details(rt: ResourceType, name: str) -> dict[str, Any]:
    return _details(rt, name)


def conflict(rt: ResourceType, name: str, why: str = "") -> ApiError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version and try again"
    )
    message = f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}'
    return ApiError(409, message, "Conflict", _details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details.update(kind=rt.kind, causes=causes)
    qualified_kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return ApiError(422, f'{qualified_kind} "{name}" is invalid: {summary}', "Invalid", details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def not_found_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def method_not_allowed(method: str, rt: ResourceType) -> ApiError:
    return ApiError(
        405,
        f"the server does not allow this method on the requested resource ({method} {rt.plural})",
        details={},
    )


def unsupported_patch(content_type: str) -> ApiError:
    accepted = "application/json-patch+json, application/merge-patch+json"
    if content_type != "application/strategic-merge-patch+json":
        accepted += ", application/strategic-merge-patch+json"
    return ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{accepted}, application/apply-patch+yaml",
        "UnsupportedMediaType",
    )


def is_protobuf(content_type: str) -> bool:
    return content_type.split(";")[0].strip() == "application/vnd.kubernetes.protobuf"


def unsupported_media_type() -> ApiError:
    """A body in a format the fake cannot decode (protobuf): 415 tells clients to use JSON."""
    return ApiError(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml",
        "UnsupportedMediaType",
    )


def expired(message: str) -> ApiError:
    return ApiError(410, message, "Expired")


def injected(code: int, reason: str) -> ApiError:
    reason = reason or REASONS.get(code, "InternalError")
    return ApiError(code, f"injected failure: {reason}", reason, details={})
