"""The approver's preview of a rollback says when a GitOps controller owns the workload."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.diagnosis.preview import preview
from agent.model import Finding, Severity

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def finding(kind: str, **facts: object) -> Finding:
    return Finding(kind=kind, subject="checkout", severity=Severity.SEV4, observed_at=NOW, probe="k8s-workload",
                   summary="checkout is managed by Argo CD app argocd/checkout, auto-sync with self-heal"
                   if kind == "gitops_managed" else "rollout of checkout revision 7", facts=facts)


def test_a_rollback_preview_names_the_gitops_owner_and_who_decides() -> None:
    deploy = finding("recent_deploy", revision=7, previous_revision=6, image="shop:2", previous_image="shop:1")
    owned = finding("gitops_managed", auto_sync=True, self_heal=True)
    shown, params = preview("rollback", "checkout", {}, [deploy, owned])
    assert shown["summary"] == (
        "would roll checkout back from revision 7 (shop:2) to revision 6 (shop:1); checkout is managed by "
        "Argo CD app argocd/checkout, auto-sync with self-heal: the policy's gitops rule decides how "
        "(a git revert unless it says otherwise)")
    assert params == {"to_revision": 6}
    suspended = finding("gitops_managed", auto_sync=False)
    assert "gitops" not in preview("rollback", "checkout", {}, [deploy, suspended])[0]
