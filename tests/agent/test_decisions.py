"""Decisions an on-call engineer can trust, through the real probes' analysis, the bundled tree
and the bundled policy: one test per class of mistake Hemostat used to make (time blindness,
severity by counting, unrelated flags, silent gaps, hidden plans), on incidents built from raw
API answers (tests/incidents.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.diagnosis.registry import Registry
from agent.diagnosis.service import Diagnosis, evaluate
from agent.diagnosis.wiring import App, build_app
from agent.model.config import Config
from policies.model import bundled_policy_path
from tests import corpus_edges as edges
from tests import corpus_playbook as playbook
from tests import corpus_traps as traps
from tests.incidents import Incident, at


@pytest.fixture(scope="module")
def app() -> App:
    return build_app(Config(), Registry.discover(), bundled_policy_path("default"))


def run(app: App, incident: Incident) -> Diagnosis:
    return evaluate(app, incident.spec, incident.observations, incident.started_at)


def actions(d: Diagnosis) -> list[str]:
    return [p.action for p in d.decision.proposals]


# -- time ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [playbook.change_after_onset, playbook.change_during_outage,
                                   playbook.rollout_after_onset])
def test_a_change_that_landed_after_the_symptom_began_is_never_rolled_back(app: App, build: object) -> None:
    d = run(app, build())  # type: ignore[operator]
    assert "rollback" not in actions(d)
    [ruled_out] = [r for r in d.decision.ruled_out if r.startswith("recent-deploy")]
    assert "not the cause:" in ruled_out and "landed" in ruled_out and "began" in ruled_out


def test_the_ruled_out_change_is_named_with_both_times(app: App) -> None:
    d = run(app, playbook.change_after_onset())
    assert d.decision.ruled_out[0].startswith("recent-deploy: not the cause: deploy ")
    assert "landed 02:57, errors began 02:48 (first matching log line)" in d.decision.ruled_out[0]


def test_since_is_when_the_cause_began_not_when_the_alert_fired(app: App) -> None:
    assert run(app, playbook.third_party_outage()).triage.since == at(-20)  # the status page's start
    assert run(app, playbook.bad_release()).triage.since == at(-4)  # first error line, after the deploy


def test_a_docs_only_change_is_not_a_cause_and_the_rationale_says_so(app: App) -> None:
    d = run(app, playbook.docs_only_change())
    assert "rollback" not in actions(d)
    assert any("is docs-only (docs/runbook.md, README.md)" in r for r in d.decision.ruled_out)


def test_the_best_supported_cause_comes_first_and_the_other_is_an_alternative(app: App) -> None:
    d = run(app, traps.change_before_mixed_errors())
    first, *rest = d.decision.proposals
    assert (first.action, first.role) == ("circuit-break", "primary")
    assert any("the app's errors name stripe" in s for s in first.support)
    [rollback] = [p for p in rest if p.action == "rollback"]
    assert rollback.role == "alternative"
    assert any("better supported" in a for a in rollback.against)


def test_an_alternative_never_runs_without_a_human_even_in_auto_mode(tmp_path: object) -> None:
    import pathlib

    policy = pathlib.Path(str(tmp_path)) / "auto.yaml"
    policy.write_text("mode: auto\nactions:\n  rollback: {auto: true}\n  circuit-break: {auto: true}\n")
    auto = build_app(Config(), Registry.discover(), policy)
    d = run(auto, traps.change_before_mixed_errors())
    [rollback] = [p for p in d.decision.proposals if p.action == "rollback"]
    assert d.verdicts[rollback.id].decision == "needs_approval"


# -- severity --------------------------------------------------------------------------------------
def test_one_cause_seen_by_three_probes_is_not_a_wider_blast_radius(app: App) -> None:
    assert run(app, edges.one_cause_three_probes()).triage.severity.label() == "SEV-2"  # type: ignore[union-attr]


def test_three_independent_causes_are(app: App) -> None:
    assert run(app, edges.three_independent_causes()).triage.severity.label() == "SEV-1"  # type: ignore[union-attr]


@pytest.mark.parametrize(("build", "words"), [
    (edges.log_noise, "too thin to call a spike"), (edges.ratio_at_baseline, "baseline")])
def test_noise_is_no_incident_and_proposes_nothing(app: App, build: object, words: str) -> None:
    d = run(app, build())  # type: ignore[operator]
    assert d.triage.severity is None and d.decision.proposals == ()
    assert d.triage.headline.startswith("checkout: no incident (likely false alarm)")
    assert words in d.triage.noise[0]
    assert d.triage.look_again_at is None


def test_a_sample_too_small_to_judge_is_looked_at_again_not_silence(app: App) -> None:
    d = run(app, edges.small_sample())
    assert d.triage.severity is None and d.decision.proposals == ()
    assert "n=10" in d.triage.noise[0]
    assert d.triage.look_again_at is not None
    assert d.triage.headline == (f"checkout: need more data: {d.triage.noise[0]}; looking again at "
                                 f"{d.triage.look_again_at:%H:%M}Z")
    assert d.triage.to_json()["look_again_at"] == d.triage.look_again_at.isoformat()


# -- flags -----------------------------------------------------------------------------------------
def test_no_feature_flag_off_without_an_evidence_match(app: App) -> None:
    for build in (playbook.lock_chain, edges.does_not_match, playbook.bad_release):
        assert "feature-flag-off" not in actions(run(app, build()))


def test_only_the_flag_whose_declaration_matches_is_proposed_with_the_match(app: App) -> None:
    d = run(app, edges.matches_route())
    [flag] = [p for p in d.decision.proposals if p.action == "feature-flag-off"]
    assert flag.subject == "new-payment-flow"
    assert "new-payment-flow governs route /api/v2/pay" in flag.reason
    assert "POST /api/v2/pay order" in flag.support[0]


def test_the_fallback_branch_never_runs_beside_the_database_branch(app: App) -> None:
    assert run(app, playbook.lock_chain()).decision.branches == ("database",)


# -- gaps ------------------------------------------------------------------------------------------
def test_a_failed_probe_is_an_incomplete_diagnosis_never_no_problem_found(app: App) -> None:
    d = run(app, edges.everything_failed())
    assert d.triage.severity is None and not d.triage.complete
    assert "no problem found" not in d.triage.headline
    assert d.triage.headline.startswith("checkout: diagnosis incomplete")
    doc = d.to_json()
    assert doc["complete"] is False and [m["probe"] for m in doc["missing"]] == ["k8s-workload", "app-metrics"]
    assert "HTTP 503" in doc["missing"][0]["why"]


def test_a_crashed_probe_does_not_lower_severity_and_the_headline_says_incomplete(app: App) -> None:
    d = run(app, edges.probe_crashed())
    assert d.triage.severity is not None and d.triage.severity.label() == "SEV-3"
    assert d.triage.headline.endswith("[incomplete: k8s-workload could not look]")


def test_forbidden_log_read_names_the_grant_in_the_gap(app: App) -> None:
    d = run(app, edges.rbac_forbids_logs())
    [gap] = d.triage.missing
    assert gap.probe == "k8s-logs" and gap.code == "kube_forbidden" and "pods/log" in gap.why


def test_metrics_server_quantities_in_every_unit_parse(app: App) -> None:
    for build in edges.QUANTITIES:
        d = run(app, build())
        assert d.triage.complete, d.triage.missing
    saturated = run(app, edges.nano_kibi())
    assert [f.kind for f in saturated.findings] == ["memory_saturated"]


# -- plans -----------------------------------------------------------------------------------------
def test_kill_queries_shows_and_pins_the_pids_and_queries_it_would_cancel(app: App) -> None:
    [kill] = run(app, playbook.lock_chain()).decision.proposals
    assert kill.params["pids"] == [4242]
    assert kill.preview["sessions"][0]["query"] == "UPDATE orders SET total = ? WHERE id = ?"
    assert kill.preview["summary"] == "would cancel 1 root blocker(s) in postgres:shop: pid 4242"


def test_rollback_shows_the_revision_and_image_it_returns_to(app: App) -> None:
    [rollback] = run(app, playbook.rollout_crash_loop()).decision.proposals
    assert rollback.params["to_revision"] == 6
    assert rollback.preview["summary"] == ("would roll checkout back from revision 7 (shop/checkout:v1.9.0) "
                                           "to revision 6 (shop/checkout:v1.8.2)")


def test_scale_up_shows_replicas_from_and_to(app: App) -> None:
    [scale] = run(app, playbook.traffic_spike()).decision.proposals
    assert (scale.preview["replicas_from"], scale.preview["replicas_to"]) == (4, 8)


def test_the_status_update_says_the_diagnosis_is_incomplete(app: App) -> None:
    from agent.incidents.status import status_update
    from agent.ledger import Event, IncidentRecord

    d = run(app, edges.rbac_forbids_logs())
    incident = IncidentRecord("inc-1", "checkout", d.triage.headline, "triaged", 2, at(0), at(0))
    events = [Event(1, at(0), "triaged", "hemostat", "inc-1", data=d.triage.to_json())]
    update = status_update(incident, events, at(1), 30)
    assert update.impact.endswith("(diagnosis incomplete: k8s-logs could not look)")
    assert "[incomplete: k8s-logs could not look]" in update.title


@given(deploy=st.integers(min_value=-29, max_value=-1), errors=st.integers(min_value=-14, max_value=-3))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_rollback_is_proposed_exactly_when_the_deploy_came_before_the_errors(app: App, deploy: int,
                                                                              errors: int) -> None:
    """Any deploy time against any error onset: time alone decides, within the 2-minute tolerance."""
    from tests.incidents import commit, git, kubelet, logs

    incident = playbook.change_after_onset()
    incident.observations = [git("checkout", commit(at(deploy), "checkout: v1.8.1", ["k8s/checkout.yaml"])),
                             logs(incident.spec, {"checkout-a": kubelet(playbook.app_errors(errors))})]
    proposed = "rollback" in actions(run(app, incident))
    assert proposed == (deploy <= errors + 2), (deploy, errors)
