"""Authentication and authorization reviews for the fake apiserver.

`Auth` knows bearer tokens (`add_token`, `service_account_token`) and answers the four review
APIs as kube-apiserver does: TokenReview (who is this token?), SubjectAccessReview (may this user
do that?), SelfSubjectReview (`kubectl auth whoami`) and SelfSubjectAccessReview (`kubectl auth
can-i`). Access is decided by RBAC over the stored Role/ClusterRole/RoleBinding/ClusterRoleBinding
objects (tests.kubeapi.rbac). Creating a TokenReview or SubjectAccessReview needs RBAC's
permission when the caller presents a token (as `system:auth-delegator` grants); anonymous
callers are let through so the rest of the suite, which sends no token, is unaffected. Real
kubectl sends no token over plain HTTP, so it is identified by impersonation (`--as`,
`--as-group`), allowed as RBAC allows the caller to `impersonate`; its protobuf requests are
decoded by tests.kubeapi.protowire.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

from tests.kubeapi.errors import ApiError, bad_request
from tests.kubeapi.protowire import decode_review
from tests.kubeapi.rbac import Attributes, Authorizer, User, rbac_types
from tests.kubeapi.resources import Registry, ResourceType

AUTHN, AUTHZ = "authentication.k8s.io", "authorization.k8s.io"
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
AUTH_DELEGATOR = {
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "system:auth-delegator"},
    "rules": [{"apiGroups": [AUTHN], "resources": ["tokenreviews"], "verbs": ["create"]},
              {"apiGroups": [AUTHZ], "resources": ["subjectaccessreviews"], "verbs": ["create"]}],
}
Obj = dict[str, Any]


def review_types() -> list[ResourceType]:
    """The review APIs, for discovery (create only; nothing is stored)."""
    rt = ResourceType
    create = ("create",)
    return [rt(AUTHN, "v1", "tokenreviews", "TokenReview", False, verbs=create),
            rt(AUTHN, "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=create),
            rt(AUTHZ, "v1", "subjectaccessreviews", "SubjectAccessReview", False, verbs=create),
            rt(AUTHZ, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, verbs=create),
            rt(AUTHZ, "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", verbs=create)]


class Auth:
    """Tokens, and the review endpoints under /apis/authentication.k8s.io and authorization."""

    def __init__(self, registry: Registry, store: Any) -> None:
        for rt in (*rbac_types(), *review_types()):
            registry.add(rt)
        self.authorizer = Authorizer(store)
        self._tokens: dict[str, User] = {}
        self._lock = threading.Lock()

    def add_token(self, token: str, username: str, groups: tuple[str, ...] = (), uid: str = "",
                  extra: dict[str, list[str]] | None = None) -> str:
        """Make `token` authenticate as `username` (plus `system:authenticated`, as the real one)."""
        user = User(username, (*groups, "system:authenticated"), uid, dict(extra or {}))
        with self._lock:
            self._tokens[token] = user
        return token

    def service_account_token(self, namespace: str, name: str) -> str:
        token = f"sa-{secrets.token_hex(16)}"
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        return self.add_token(token, f"system:serviceaccount:{namespace}:{name}", groups,
                              uid=secrets.token_hex(8))

    def user_of(self, authorization: str) -> User | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    def handle(self, method: str, path: str, body: bytes, content_type: str,
               headers: Any) -> Obj | None:
        """The review answer for `path`, or None when `path` is not a review API. `headers` is
        the request's (an email.message.Message: Impersonate-Group may repeat)."""
        parts = [p for p in path.split("/") if p]
        if len(parts) < 4 or parts[0] != "apis" or parts[1] not in (AUTHN, AUTHZ) or parts[2] != "v1":
            return None
        kind = parts[-1]
        if method != "POST":
            raise ApiError(405, f"the server does not allow this method on the requested resource "
                                f"({method} {kind})", details={})
        caller = self._impersonated(self._caller(headers.get("Authorization") or ""), headers)
        review = _parse_protobuf(body) if "protobuf" in content_type else _parse(body)
        answer = self._answer(kind, review, caller, parts)
        if answer is None:
            return None
        return {"apiVersion": f"{parts[1]}/v1", "metadata": {"creationTimestamp": None},
                **{k: v for k, v in review.items() if k not in ("apiVersion", "metadata", "status")},
                **answer}

    def _caller(self, authorization: str) -> User:
        if not authorization:
            return ANONYMOUS
        user = self.user_of(authorization)
        if user is None:
            raise ApiError(401, "Unauthorized", details={})
        return user

    def _impersonated(self, caller: User, headers: Any) -> User:
        """kubectl --as/--as-group: allowed when RBAC lets the caller `impersonate` each one."""
        name = headers.get("Impersonate-User")
        groups = tuple(headers.get_all("Impersonate-Group") or ())
        if not name:
            return caller
        for resource, value in (("users", name), *(("groups", g) for g in groups)):
            allowed, _ = self.authorizer.authorize(caller, Attributes("impersonate", "", resource, name=value))
            if not allowed:
                raise ApiError(403, f'{resource} "{value}" is forbidden: User "{caller.name}" cannot '
                                    f'impersonate resource "{resource}" in API group "" at the cluster scope',
                               details={"name": value, "kind": resource})
        return User(name, (*groups, "system:authenticated"), headers.get("Impersonate-Uid") or "")

    def _answer(self, kind: str, review: Obj, caller: User, parts: list[str]) -> Obj | None:
        spec = review.get("spec") or {}
        if kind == "tokenreviews":
            self._may_create(caller, AUTHN, kind)
            return {"kind": "TokenReview", "status": self._token_status(spec)}
        if kind == "selfsubjectreviews":
            return {"kind": "SelfSubjectReview", "status": {"userInfo": caller.info()}}
        if kind == "selfsubjectaccessreviews":
            if caller is ANONYMOUS:  # the fake serves a token-less caller everything: say so
                self._access(caller, spec)  # still validated
                return {"kind": "SelfSubjectAccessReview", "status": {"allowed": True}}
            return {"kind": "SelfSubjectAccessReview", "status": self._access(caller, spec)}
        if kind == "subjectaccessreviews":
            self._may_create(caller, AUTHZ, kind)
            return {"kind": "SubjectAccessReview", "status": self._access(_subject(spec), spec)}
        if kind == "localsubjectaccessreviews" and len(parts) == 6:
            self._may_create(caller, AUTHZ, kind, parts[4])
            spec.setdefault("resourceAttributes", {})["namespace"] = parts[4]
            return {"kind": "LocalSubjectAccessReview", "status": self._access(_subject(spec), spec)}
        return None

    def _may_create(self, caller: User, group: str, resource: str, namespace: str = "") -> None:
        if caller is ANONYMOUS:
            return
        allowed, _ = self.authorizer.authorize(caller, Attributes("create", group, resource,
                                                                  namespace=namespace))
        if not allowed:
            raise ApiError(403, f'{resource}.{group} is forbidden: User "{caller.name}" cannot create '
                                f'resource "{resource}" in API group "{group}" at the cluster scope',
                           details={"group": group, "kind": resource})

    def _token_status(self, spec: Obj) -> Obj:
        with self._lock:
            user = self._tokens.get(str(spec.get("token") or ""))
        if user is None:
            return {"authenticated": False, "error": "invalid bearer token", "user": {}}
        status: Obj = {"authenticated": True, "user": user.info()}
        if spec.get("audiences"):
            status["audiences"] = list(spec["audiences"])
        return status

    def _access(self, user: User, spec: Obj) -> Obj:
        if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
            raise bad_request("spec.resourceAttributes or spec.nonResourceAttributes is required")
        allowed, reason = self.authorizer.authorize(user, Attributes.from_spec(spec))
        return {"allowed": allowed, **({"reason": reason} if reason else {})}


def _subject(spec: Obj) -> User:
    if not spec.get("user") and not spec.get("groups"):
        raise bad_request("at least one of user or group must be specified")
    return User(spec.get("user") or "", tuple(spec.get("groups") or ()), spec.get("uid") or "",
                dict(spec.get("extra") or {}))


def _parse_protobuf(body: bytes) -> Obj:
    """kubectl sends its reviews as protobuf, and does not fall back to JSON on a 415."""
    try:
        return decode_review(body)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ApiError(415, f"the body of the request was in an unknown format: {exc}") from exc


def _parse(body: bytes) -> Obj:
    try:
        doc = json.loads(body or b"{}")
    except ValueError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
    if not isinstance(doc, dict):
        raise bad_request("couldn't get version/kind; json parse error: expected an object")
    return doc
