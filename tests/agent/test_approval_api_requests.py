"""The approval API's answers to malformed and unauthenticated requests, in-process against the
test apiserver (the end-to-end forgeries are in test_approval_api.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes.client
import pytest

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.execution.identity_cache import ReviewCache
from agent.execution.identity_kube import KubernetesIdentities
from agent.ledger.sqlite import SqliteLedger
from agent.model import DecisionStep, Proposal, TargetSpec, Verdict
from agent.model.config import Config
from agent.server.approval_api import ROUTES, ApprovalApi, authenticated
from tests.kubeapi.server import FakeApiServer


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApprovalApi]:
    tmp_path = tmp_path_factory.mktemp("approval-api")
    fake = FakeApiServer()
    fake.start()
    fake.auth.add_token("t-alice", "alice", ("sre",))
    client = kubernetes.client.ApiClient(fake.client_configuration())
    app = build_app(Config(targets=[TargetSpec(name="checkout", namespace="shop")]), Registry.discover())
    ledger = SqliteLedger(tmp_path / "ledger.db")
    now = datetime.now(UTC)
    for pid in ("p-secret01", "p-secret02"):  # alice has no RBAC grant for any proposal
        ledger.add_proposal(Proposal(id=pid, target="checkout", action="failover", subject="payments",
                                     params={}, path=(DecisionStep("errors", "5xx"),), reason="r",
                                     created_at=now),
                            Verdict("needs_approval", "propose", ("2",), 2), now, now + timedelta(hours=1))
    yield ApprovalApi(app, ledger, ReviewCache(KubernetesIdentities(lambda: client)))
    ledger.close()
    client.close()
    fake.stop()


def _call(api: ApprovalApi, verb: str, token: str | None, body: Any) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return asyncio.run(api.handle(verb, headers, raw))


def test_the_routes_are_fixed_paths_for_a_route_table() -> None:
    assert ROUTES == {"/v1/proposals/approve": "approve", "/v1/proposals/reject": "reject",
                      "/v1/proposals/revert": "revert"}


def test_no_bearer_token_or_one_the_cluster_rejects_is_401_before_the_body_is_read(
        api: ApprovalApi) -> None:
    """H1: the check before the body is the TokenReview itself, not "a token is present"."""
    before_body = lambda headers: asyncio.run(authenticated(api.identities, headers))  # noqa: E731
    assert before_body({"Authorization": "Basic YWxpY2U6cHc="})[0] == 401
    refused = before_body({"authorization": "Bearer x"})
    assert refused is not None and refused[0] == 401 and "did not authenticate" in refused[1]["error"]
    assert before_body({"authorization": "Bearer t-alice"}) is None
    status, answer = _call(api, "approve", None, {"id": "p-1"})
    assert status == 401 and "hemostat approve --server URL" in answer["error"]


@pytest.mark.parametrize("body", [b"not json", {"id": "../etc"}, {"reason": "no id"}, ["p-1"],
                                  b"{" + b" " * 20000 + b"}"])
def test_a_malformed_body_is_refused_clearly(api: ApprovalApi, body: Any) -> None:
    status, answer = _call(api, "approve", "t-alice", body)
    assert status in (400, 413) and "error" in answer


def test_an_unknown_token_is_401_whether_or_not_the_proposal_exists(api: ApprovalApi) -> None:
    assert _call(api, "approve", "forged", {"id": "p-nothere"}) == \
        _call(api, "approve", "forged", {"id": "p-secret01"})
    status, answer = _call(api, "approve", "forged", {"id": "p-secret01"})
    assert status == 401 and "did not authenticate" in answer["error"]


@pytest.mark.parametrize("probe", ["_", "p", "p-secret0", "p-secret0_", "p-secret01x"])
def test_a_valid_token_learns_nothing_about_proposals_it_may_not_act_on(api: ApprovalApi,
                                                                         probe: str) -> None:
    """M1: a LIKE wildcard or a prefix used to list ids (409, "matches several ...: p-a, p-b"),
    and the 403 named a real proposal's action and namespace. Now ids are matched exactly and a
    missing proposal and a forbidden one get the same answer."""
    missing = _call(api, "reject", "t-alice", {"id": probe})
    existing = _call(api, "reject", "t-alice", {"id": "p-secret01"})
    assert missing[0] == existing[0] == 403
    assert missing[1]["error"].replace(repr(probe), "ID") == existing[1]["error"].replace("'p-secret01'", "ID")
    for _, answer in (missing, existing):
        assert "p-secret02" not in answer["error"] and "failover" not in answer["error"]
        assert "shop" not in answer["error"]
    assert api.ledger.proposal("p-secret01").state == "proposed"  # and nothing was rejected
