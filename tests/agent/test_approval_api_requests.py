"""The approval API's answers to malformed and unauthenticated requests, in-process against the
test apiserver (the end-to-end forgeries are in test_approval_api.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.execution.identity_kube import KubernetesIdentities
from agent.ledger.sqlite import SqliteLedger
from agent.model import TargetSpec
from agent.model.config import Config
from agent.server.approval_api import ROUTES, ApprovalApi, bearer_present
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
    yield ApprovalApi(app, ledger, KubernetesIdentities(lambda: client))
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


def test_no_bearer_token_is_401_before_the_body_is_read(api: ApprovalApi) -> None:
    assert bearer_present({"Authorization": "Basic YWxpY2U6cHc="})[0] == 401  # type: ignore[index]
    assert bearer_present({"authorization": "Bearer x"}) is None
    status, answer = _call(api, "approve", None, {"id": "p-1"})
    assert status == 401 and "hemostat approve --server URL" in answer["error"]


@pytest.mark.parametrize("body", [b"not json", {"id": "../etc"}, {"reason": "no id"}, ["p-1"],
                                  b"{" + b" " * 20000 + b"}"])
def test_a_malformed_body_is_refused_clearly(api: ApprovalApi, body: Any) -> None:
    status, answer = _call(api, "approve", "t-alice", body)
    assert status in (400, 413) and "error" in answer


def test_an_unknown_token_is_401_and_an_unknown_proposal_404_only_after_authentication(
        api: ApprovalApi) -> None:
    status, answer = _call(api, "approve", "forged", {"id": "p-nothere"})
    assert status == 401 and "did not authenticate" in answer["error"]  # existence not revealed
    status, answer = _call(api, "approve", "t-alice", {"id": "p-nothere"})
    assert status == 404 and "no proposal matches" in answer["error"]
