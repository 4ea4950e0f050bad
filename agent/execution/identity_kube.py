"""The Kubernetes identity source: TokenReview to learn who sent a token, SubjectAccessReview to
ask whether RBAC lets them approve (the pattern of kube-rbac-proxy).

Authorisation is ordinary RBAC on a resource of Hemostat's API group that no API serves: verb
`approve` (or `revert`, `reject`) on `mitigations.hemostat.io`, named after the action, in the
target's namespace: a SelfSubjectAccessReview with those attributes asks the question the daemon
asks (docs/approvals.md). The daemon's service account needs `system:auth-delegator` (the chart
binds it) to create both reviews.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.model import HemostatError, TemporaryError
from agent.model.identity import Identity

API_GROUP = "hemostat.io"
RESOURCE = "mitigations"


class AuthError(HemostatError):
    """An approval API refusal carrying its HTTP status (401 unauthenticated, 403 forbidden)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, code=f"http_{status}")
        self.status = status


@dataclass(frozen=True)
class Permission:
    """What a caller needs: `verb` on <resource>.hemostat.io/<name> in `namespace`; approvers
    need approve (reject, revert) on mitigations named after the action, and a remote
    diagnosis needs create on diagnoses named after the target."""

    verb: str
    action: str  # the resource name: the action's, or the target's for diagnoses
    namespace: str
    resource: str = RESOURCE

    def describe(self) -> str:
        where, role = (f"in namespace {self.namespace!r}", "a Role there") if self.namespace \
            else ("cluster-wide", "a ClusterRole")
        named = f" named {self.action!r}" if self.action else ""  # a list is of every name
        return (f"{self.verb} on {self.resource}.{API_GROUP}{named} {where} ({role} "
                f"with apiGroups [{API_GROUP}], resources [{self.resource}], verbs [{self.verb}], "
                "bound to you or your group; docs/approvals.md)")


@dataclass
class KubernetesIdentities:
    """Authenticate bearer tokens and authorise permissions through the cluster's API.

    `api` builds the daemon's own ApiClient (its service account, in the cluster)."""

    api: Callable[[], Any]
    audiences: tuple[str, ...] = ()
    timeout_s: float = 10.0  # each review's deadline (kubernetes.request_timeout_s)

    def authenticate(self, token: str) -> tuple[Identity, dict[str, list[str]]]:
        """The identity behind `token` (and the authenticator's `extra`, for the SAR)."""
        from kubernetes import client

        spec = client.V1TokenReviewSpec(token=token, audiences=list(self.audiences) or None)
        review = self._call(lambda: client.AuthenticationV1Api(self.api()).create_token_review(
            client.V1TokenReview(spec=spec), _request_timeout=self.timeout_s))
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            why = (status.error if status is not None and status.error else "token not accepted")
            raise AuthError(401, f"the cluster did not authenticate this token ({why}); "
                                 "check your kubeconfig context")
        user = status.user
        who = Identity("kubernetes", user.username or "", user.username or "",
                       tuple(user.groups or ()), user.uid or "")
        return who, {k: list(v) for k, v in (user.extra or {}).items()}

    def authorize(self, who: Identity, extra: dict[str, list[str]], need: Permission) -> None:
        """Raise AuthError(403) naming the permission unless RBAC grants it to `who`."""
        from kubernetes import client

        attributes = client.V1ResourceAttributes(group=API_GROUP, resource=need.resource, verb=need.verb,
                                                 name=need.action, namespace=need.namespace)
        spec = client.V1SubjectAccessReviewSpec(user=who.name, groups=list(who.groups),
                                                uid=who.uid or None, extra=extra or None,
                                                resource_attributes=attributes)
        review = self._call(lambda: client.AuthorizationV1Api(self.api()).create_subject_access_review(
            client.V1SubjectAccessReview(spec=spec), _request_timeout=self.timeout_s))
        status = review.status
        if status is None or not status.allowed or status.denied:
            what = ("this proposal" if need.resource == RESOURCE else f"target {need.action!r}") \
                if need.verb not in ("get", "list") else f"{need.resource} {need.action or ''}".rstrip()
            raise AuthError(403, f"{who.name} may not {need.verb} {what}: RBAC grants no "
                                 f"{need.describe()}")

    @staticmethod
    def _call(request: Callable[[], Any]) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return request()
        except ApiException as e:
            if e.status in (401, 403):  # the daemon itself lacks system:auth-delegator
                raise AuthError(503, "the daemon may not create TokenReviews or SubjectAccessReviews "
                                     f"({e.status} {e.reason}); bind it to system:auth-delegator") from None
            raise TemporaryError(f"the Kubernetes API answered {e.status} {e.reason}",
                                 code="kube_unavailable") from None
        except HTTPError as e:
            raise TemporaryError(f"cannot reach the Kubernetes API: {type(e).__name__}",
                                 code="kube_unavailable") from None
