# The generated client models type every field as Optional; these tests assert on what came back.
# mypy: disable-error-code="union-attr,index,arg-type,operator,attr-defined,no-untyped-call"
"""Contract tests for authentication and RBAC authorization, through the official client.

Unmarked tests also run against a real cluster (HEMOSTAT_E2E_KUBECONFIG): they create RBAC
objects in a fresh namespace and ask SubjectAccessReviews about made-up users, which needs no
tokens. `fake_only` tests mint tokens, which only the fake can.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.kubeapi.server import FakeApiServer

fake_only = pytest.mark.fake_only
GROUP = "hemostat.io"


def _rules(*rules: dict[str, Any]) -> list[client.V1PolicyRule]:
    return [client.V1PolicyRule(**r) for r in rules]


@pytest.fixture
def rbac(kube_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(kube_client)


@pytest.fixture
def authz(kube_client: client.ApiClient) -> client.AuthorizationV1Api:
    return client.AuthorizationV1Api(kube_client)


def _role(rbac: client.RbacAuthorizationV1Api, ns: str, name: str, *rules: dict[str, Any]) -> None:
    rbac.create_namespaced_role(ns, client.V1Role(metadata=client.V1ObjectMeta(name=name),
                                                  rules=_rules(*rules)))


def _bind(rbac: client.RbacAuthorizationV1Api, ns: str, role: str, *subjects: tuple[str, str],
          kind: str = "Role") -> None:
    rbac.create_namespaced_role_binding(ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=f"{role}-{uuid.uuid4().hex[:6]}"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind=kind, name=role),
        subjects=[client.RbacV1Subject(kind=k, name=n, api_group="rbac.authorization.k8s.io")
                  for k, n in subjects]))


def _can(authz: client.AuthorizationV1Api, user: str, verb: str, ns: str, resource: str = "mitigations",
         name: str | None = None, groups: tuple[str, ...] = (), group: str = GROUP,
         subresource: str | None = None) -> bool:
    review = authz.create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, groups=list(groups), resource_attributes=(
            client.V1ResourceAttributes(group=group, resource=resource, verb=verb, name=name,
                                        namespace=ns, subresource=subresource)))))
    return bool(review.status.allowed)


def test_a_role_grants_its_verbs_and_resource_names_to_a_bound_user(
        rbac: client.RbacAuthorizationV1Api, authz: client.AuthorizationV1Api, kube_namespace: str) -> None:
    _role(rbac, kube_namespace, "approver", {"api_groups": [GROUP], "resources": ["mitigations"],
                                             "resource_names": ["rollback"], "verbs": ["approve"]})
    _bind(rbac, kube_namespace, "approver", ("User", "alice"))
    assert _can(authz, "alice", "approve", kube_namespace, name="rollback")
    assert not _can(authz, "alice", "approve", kube_namespace, name="scale-up")  # another name
    assert not _can(authz, "alice", "approve", kube_namespace)  # resourceNames need a name
    assert not _can(authz, "alice", "revert", kube_namespace, name="rollback")  # another verb
    assert not _can(authz, "bob", "approve", kube_namespace, name="rollback")  # not bound
    assert not _can(authz, "alice", "approve", "default", name="rollback")  # another namespace


def test_groups_and_wildcards_match_as_rbac_defines_them(
        rbac: client.RbacAuthorizationV1Api, authz: client.AuthorizationV1Api, kube_namespace: str) -> None:
    _role(rbac, kube_namespace, "sre", {"api_groups": ["*"], "resources": ["*"], "verbs": ["approve"]},
          {"api_groups": ["apps"], "resources": ["*/scale"], "verbs": ["*"]})
    _bind(rbac, kube_namespace, "sre", ("Group", "sre"))
    assert _can(authz, "carol", "approve", kube_namespace, name="anything", groups=("sre",))
    assert _can(authz, "carol", "approve", kube_namespace, resource="pods", group="", groups=("sre",))
    assert not _can(authz, "carol", "approve", kube_namespace, name="anything", groups=("dev",))
    assert _can(authz, "carol", "update", kube_namespace, resource="deployments", group="apps",
                subresource="scale", groups=("sre",))
    assert not _can(authz, "carol", "update", kube_namespace, resource="deployments", group="apps",
                    groups=("sre",))  # */scale is the subresource only


def test_a_rolebinding_to_a_clusterrole_grants_only_in_its_namespace(
        rbac: client.RbacAuthorizationV1Api, authz: client.AuthorizationV1Api, kube_namespace: str) -> None:
    name = f"hemostat-approver-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=_rules(
        {"api_groups": [GROUP], "resources": ["mitigations"], "verbs": ["approve", "reject"]})))
    try:
        _bind(rbac, kube_namespace, name, ("User", "dana"), kind="ClusterRole")
        assert _can(authz, "dana", "reject", kube_namespace, name="rollback")
        assert not _can(authz, "dana", "reject", "default", name="rollback")
    finally:
        rbac.delete_cluster_role(name)


def test_a_clusterrolebinding_grants_everywhere_and_names_itself_in_the_reason(
        rbac: client.RbacAuthorizationV1Api, authz: client.AuthorizationV1Api, kube_namespace: str) -> None:
    name = f"hemostat-approver-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=_rules(
        {"api_groups": [GROUP], "resources": ["mitigations"], "verbs": ["approve"]})))
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="bot", namespace=kube_namespace)]))
    try:
        sa = f"system:serviceaccount:{kube_namespace}:bot"
        review = authz.create_subject_access_review(client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(user=sa, resource_attributes=client.V1ResourceAttributes(
                group=GROUP, resource="mitigations", verb="approve", name="x", namespace="default"))))
        assert review.status.allowed and name in (review.status.reason or "")
        assert not _can(authz, f"system:serviceaccount:{kube_namespace}:other", "approve", "default")
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def test_self_subject_access_review_answers_for_the_caller(authz: client.AuthorizationV1Api) -> None:
    review = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
            group=GROUP, resource="mitigations", verb="approve", name=f"nothing-{uuid.uuid4().hex[:6]}",
            namespace="kube-public"))))
    assert review.status.allowed in (True, False)  # a real admin may; the anonymous fake caller not


def test_an_unknown_token_is_not_authenticated(kube_client: client.ApiClient) -> None:
    review = client.AuthenticationV1Api(kube_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=f"not-a-token-{uuid.uuid4().hex}")))
    assert review.status.authenticated is not True


# -- with tokens (fake only) ---------------------------------------------------------------------

@pytest.fixture
def as_user(fake_api: FakeApiServer) -> Iterator[Any]:
    """An ApiClient factory authenticating with a bearer token."""
    clients: list[client.ApiClient] = []

    def make(token: str) -> client.ApiClient:
        configuration = fake_api.client_configuration()
        configuration.api_key = {"BearerToken": f"Bearer {token}"}
        clients.append(client.ApiClient(configuration))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


@fake_only
def test_token_review_returns_the_user_groups_uid_and_extra(fake_api: FakeApiServer,
                                                            kube_client: client.ApiClient) -> None:
    fake_api.auth.add_token("t-alice", "alice@example.com", ("sre",), uid="u-1",
                            extra={"scopes": ["approve"]})
    review = client.AuthenticationV1Api(kube_client).create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token="t-alice", audiences=["hemostat"])))
    user = review.status.user
    assert review.status.authenticated and review.status.audiences == ["hemostat"]
    assert (user.username, user.uid, user.groups) == ("alice@example.com", "u-1",
                                                      ["sre", "system:authenticated"])
    assert user.extra == {"scopes": ["approve"]}


@fake_only
def test_self_subject_review_is_whoami(fake_api: FakeApiServer, as_user: Any) -> None:
    fake_api.auth.add_token("t-bob", "bob", ("dev",))
    review = client.AuthenticationV1Api(as_user("t-bob")).create_self_subject_review(
        client.V1SelfSubjectReview())
    assert review.status.user_info.username == "bob"
    assert review.status.user_info.groups == ["dev", "system:authenticated"]


@fake_only
def test_creating_reviews_needs_auth_delegator(fake_api: FakeApiServer, as_user: Any,
                                               rbac: client.RbacAuthorizationV1Api) -> None:
    token = fake_api.auth.service_account_token("ops", "hemostat")
    api = client.AuthenticationV1Api(as_user(token))
    spec = client.V1TokenReview(spec=client.V1TokenReviewSpec(token="whatever"))
    with pytest.raises(client.ApiException) as err:
        api.create_token_review(spec)
    message = json.loads(err.value.body)["message"]
    assert err.value.status == 403 and 'cannot create resource "tokenreviews"' in message
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name="hemostat-auth-delegator"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                  name="system:auth-delegator"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="hemostat", namespace="ops")]))
    assert api.create_token_review(spec).status.authenticated is False


@fake_only
def test_a_token_the_fake_does_not_know_is_401(as_user: Any) -> None:
    with pytest.raises(client.ApiException) as err:
        client.AuthenticationV1Api(as_user("forged")).create_self_subject_review(client.V1SelfSubjectReview())
    assert err.value.status == 401
