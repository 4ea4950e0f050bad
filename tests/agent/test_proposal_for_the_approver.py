"""The proposal the approver reads carries who manages the workload (GitOps) and what
verification will check, not only the diagnosis around it."""

from __future__ import annotations

from agent.diagnosis.registry import Registry
from agent.diagnosis.service import evaluate
from agent.diagnosis.wiring import build_app
from agent.model.config import Config
from agent.model.gitops import Owner, describe
from policies.model import bundled_policy_path
from tests import corpus_playbook as playbook

APPLICATION = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": "checkout", "namespace": "argocd"},
               "spec": {"source": {"repoURL": "https://git.example.com/deploys.git", "path": "apps/checkout",
                                   "targetRevision": "main"},
                        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}},
               "status": {"sync": {"status": "Synced", "revision": "0f8819a" + "0" * 33},
                          "health": {"status": "Degraded"}}}


def test_a_rollback_proposal_names_the_gitops_owner_and_what_verify_checks() -> None:
    incident = playbook.rollout_crash_loop()
    [observation] = incident.observations
    owner = Owner("Application", "argocd", "checkout", "annotation argocd.argoproj.io/tracking-id")
    observation.data["gitops"] = describe(owner, APPLICATION)  # as the probe's own _gitops.owner
    app = build_app(Config(), Registry.discover(), bundled_policy_path("default"))
    diagnosis = evaluate(app, incident.spec, incident.observations, incident.started_at)
    [rollback] = [p for p in diagnosis.decision.proposals if p.action == "rollback"]
    assert rollback.preview["gitops"] == "checkout is managed by Argo CD app argocd/checkout, auto-sync with self-heal"
    assert rollback.preview["summary"].endswith(
        "the policy's gitops rule decides how (a git revert unless it says otherwise)")
    assert rollback.preview["verify"].startswith(
        "the live workload runs the template (image) the rollback restores, not the suspect one")
    assert "symptom is measured again" in rollback.preview["verify"]
