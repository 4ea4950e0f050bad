"""Where a cluster fault leads in the tree: a fault the newest rollout put in the pod template is
rolled back (undoing it restores the workload); a fault outside what the rollout changed (a
cordoned node) is never rolled back — the rollback is ruled out with the reason, and the
proposal is an investigate that says what to change. The symptoms it explains move no branch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from agent.diagnosis.snapshot import diagnose_snapshot
from agent.diagnosis.wiring import build_app
from agent.model.config import Config
from tests.agent.test_diagnose_snapshot import write_lists
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, healthy
from tests.probes.cluster_plant import container

NOW = datetime(2026, 12, 8, 0, 30, tzinfo=UTC)


def _recent_rollout(lists: dict, image: str) -> None:
    newest = lists["replicasets"][0]
    newest["metadata"]["creationTimestamp"] = "2026-12-08T00:25:00Z"
    newest["spec"]["template"]["spec"]["containers"][0]["image"] = image
    for pod in lists["pods"]:  # the rollout's pods, made after it
        pod["metadata"]["creationTimestamp"] = "2026-12-08T00:26:00Z"


def test_a_fault_the_rollout_put_there_is_rolled_back(tmp_path: Path) -> None:
    lists = healthy()
    CASES["image_not_found"][1](lists)
    _recent_rollout(lists, container(lists)["image"])
    [d] = diagnose_snapshot(build_app(Config()), write_lists(tmp_path, lists), now=NOW)
    first, *rest = d.decision.proposals
    assert (first.action, first.role) == ("rollback", "primary")
    assert any("put image not found there" in s for s in first.support)
    assert [(p.action, p.subject, p.role) for p in rest] == [("investigate", "deployment/cart", "alternative")]
    assert d.findings[0].kind == "image_not_found" and d.findings[0].facts["from_change"]


def test_a_fault_outside_the_rollout_is_not_rolled_back(tmp_path: Path) -> None:
    lists = healthy()
    CASES["node_cordoned"][1](lists)
    _recent_rollout(lists, "registry.example.com/shop/cart:1.5")  # a new image, but the node is cordoned
    [d] = diagnose_snapshot(build_app(Config()), write_lists(tmp_path, lists), now=NOW)
    assert [(p.action, p.subject) for p in d.decision.proposals] == [("investigate", "node/worker-3")]
    assert any("node cordoned (node/worker-3) is not in what" in r for r in d.decision.ruled_out)
    assert "uncordon" in d.decision.proposals[0].reason


def test_the_investigate_says_what_to_change(tmp_path: Path) -> None:
    lists = healthy()
    CASES["service_selector_mismatch"][1](lists)
    [d] = diagnose_snapshot(build_app(Config()), write_lists(tmp_path, lists), now=NOW)
    [p] = d.decision.proposals
    assert p.subject == "service/cart"
    assert "Service cart selects app=cart-svc; the pods of deployment/cart are labelled app=cart" in p.reason


def test_symptoms_the_root_cause_explains_move_no_branch(tmp_path: Path) -> None:
    lists = healthy()
    CASES["quota_exceeded_cpu"][1](lists)
    [d] = diagnose_snapshot(build_app(Config()), write_lists(tmp_path, lists), now=NOW)
    kinds = [f.kind for f in d.findings]
    assert kinds[0] == "quota_exceeded_cpu" and "replicas_unavailable" in kinds
    assert d.decision.branches == ("cluster-fault",)  # not "no single cause" on the symptom
    assert d.triage.headline.startswith("SEV-1 cart: ResourceQuota ns-quota refuses cart's pods")
    json.dumps(d.to_json())
