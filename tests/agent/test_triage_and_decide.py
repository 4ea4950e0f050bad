"""Triage and the decision tree: pure functions over findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.diagnosis.decide import decide
from agent.diagnosis.registry import Registry
from agent.diagnosis.triage import triage
from agent.model import Finding, FlagSpec, PostgresSpec, SecretRef, Severity, TargetSpec
from policies.tree import BUNDLED_TREE, load_tree

NOW = datetime(2026, 11, 27, 2, 55, tzinfo=UTC)


def _f(kind: str, subject: str = "checkout", sev: int = 2, summary: str = "", **facts: object) -> Finding:
    return Finding(kind=kind, subject=subject, severity=Severity(sev), observed_at=NOW,
                   summary=summary or kind, probe="test", facts=dict(facts))


DEPLOY = _f("recent_deploy", sev=4, summary="deploy 3f2a9c4 (v1.8) at 02:51, 4 min before the incident")
SPIKE = _f("error_spike", summary="37% of requests failing", ratio=0.37)


def test_triage_answers_what_since_changed_impact() -> None:
    result = triage([DEPLOY, SPIKE], "checkout", NOW)
    assert result.severity == Severity.SEV2
    assert result.headline == "SEV-2 checkout: 37% of requests failing"
    assert result.changed == ("deploy 3f2a9c4 (v1.8) at 02:51, 4 min before the incident",)
    assert result.impact == ("37% of checkout's requests failing",)
    assert result.since == NOW


def test_a_deploy_alone_is_not_an_incident() -> None:
    assert triage([DEPLOY], "checkout").severity is None


def test_one_cause_seen_by_three_probes_keeps_its_own_severity() -> None:
    named = _f("error_spike", summary="errors", top=[{"signature": "stripe.error.APIConnectionError: "
                                                                   "connection to api.stripe.com timed out"}])
    findings = [named, _f("dependency_down", "stripe"), _f("provider_incident", "stripe")]
    assert triage(findings, "checkout").severity == Severity.SEV2


def test_three_independent_causes_at_once_are_one_level_worse() -> None:
    findings = [SPIKE, _f("dependency_down", "stripe"), _f("lock_contention", "postgres:app")]
    assert triage(findings, "checkout").severity == Severity.SEV1


def _decide(findings: list[Finding], target: TargetSpec | None = None):  # type: ignore[no-untyped-def]
    registry = Registry.discover()
    tree = load_tree(BUNDLED_TREE, registry.actions)
    return decide(findings, target or TargetSpec(name="checkout", deployment="checkout"), tree,
                  registry, NOW)


def test_recent_deploy_with_errors_proposes_rollback_with_the_evidence() -> None:
    decision = _decide([DEPLOY, SPIKE])
    assert decision.branches == ("recent-deploy",)
    [proposal] = decision.proposals
    assert proposal.action == "rollback" and proposal.subject == "checkout"
    assert proposal.path[0].branch == "recent deployment"
    assert proposal.path[0].because.startswith("deploy 3f2a9c4 (v1.8) at 02:51, 4 min before")
    assert "37% of requests failing" in proposal.reason


def test_errors_without_a_deploy_propose_only_flags_whose_declaration_matches() -> None:
    flags = [FlagSpec(name="new-payment-flow", backend="configmap", configmap="flags", key="pay",
                      governs={"routes": ["/api/v2/pay"]}),
             FlagSpec(name="recommendations", backend="configmap", configmap="flags", key="recs",
                      governs={"routes": ["/api/recs"]}),
             FlagSpec(name="undeclared", backend="configmap", configmap="flags", key="x")]
    spike = _f("error_spike", summary="errors", top=[{
        "signature": "POST /api/v2/pay -> <num> KeyError: 'card_token'", "example": ""}])
    decision = _decide([spike], TargetSpec(name="checkout", deployment="checkout", flags=flags))
    assert decision.branches == ("otherwise",)
    assert [(p.action, p.subject) for p in decision.proposals] == [
        ("feature-flag-off", "new-payment-flow"), ("investigate", "checkout")]
    assert "governs route /api/v2/pay" in decision.proposals[0].reason


def test_dependency_down_proposes_per_dependency_and_skips_what_cannot_apply() -> None:
    decision = _decide([_f("dependency_down", "stripe")])
    assert decision.branches == ("dependency",)
    assert decision.proposals == ()  # stripe has no breaker and no fallback configured
    assert {(s.action, s.subject) for s in decision.skipped} == {
        ("circuit-break", "stripe"), ("failover", "stripe")}


def test_database_branch_continues_into_the_deploy_branch() -> None:
    target = TargetSpec(name="checkout", deployment="checkout",
                        postgres=PostgresSpec(dsn=SecretRef(env="CHECKOUT_DSN")))
    decision = _decide([DEPLOY, SPIKE, _f("long_running_queries", "postgres:app")], target)
    assert decision.branches == ("database", "recent-deploy")
    kill = [p for p in decision.proposals if p.action == "kill-queries"]
    assert kill and kill[0].params["reason"] == "long_running_queries"


def test_resource_exhaustion_proposes_scale_up() -> None:
    decision = _decide([_f("cpu_saturated")])
    assert [(p.action, p.params) for p in decision.proposals] == [("scale-up", {"factor": 2})]


def test_same_incident_gives_the_same_proposal_ids() -> None:
    assert [p.id for p in _decide([DEPLOY, SPIKE]).proposals] == \
        [p.id for p in _decide([DEPLOY, SPIKE]).proposals]
    later = decide([DEPLOY, SPIKE], TargetSpec(name="checkout", deployment="checkout"), load_tree(
        BUNDLED_TREE, Registry.discover().actions), Registry.discover(), NOW + timedelta(hours=1))
    assert later.proposals[0].id != _decide([DEPLOY, SPIKE]).proposals[0].id


def test_a_finding_with_onset_and_rate_round_trips_through_json() -> None:
    from agent.model import Rate

    rate = Rate(0.4, "ratio", 120.0, samples=2000, baseline=0.01, baseline_from="prometheus", verdict="spike")
    finding = Finding(kind="error_spike", subject="checkout", severity=Severity.SEV2, observed_at=NOW,
                      summary="40% failing", probe="prometheus", onset=NOW - timedelta(minutes=7),
                      onset_from="prometheus range query", rate=rate)
    assert Finding.from_json(finding.to_json()) == finding
    assert finding.to_json()["rate"]["baseline"] == 0.01 and not finding.noise


def test_prometheus_history_outweighs_two_scrapes_when_it_says_the_rate_is_usual() -> None:
    from agent.diagnosis.evidence import with_history_baselines
    from agent.model import Rate

    scrapes = _f("error_spike", summary="40% failing")
    scrapes = Finding(**{**scrapes.__dict__, "rate": Rate(0.4, "ratio", 2, 500, 0.01,
                                                          "the counters' lifetime ratio")})
    history = Finding(**{**scrapes.__dict__, "probe": "prometheus", "rate": Rate(
        0.4, "ratio", 300, 90_000, 0.38, "prometheus: the same hour a day and a week back", "at_baseline")})
    judged = with_history_baselines([scrapes, history])
    assert all(f.noise for f in judged)
    assert triage(judged, "checkout").headline.startswith("checkout: no incident (likely false alarm)")
    assert not with_history_baselines([scrapes])[0].noise  # alone, two scrapes still call it a spike
