"""The policy file and the gate: modes, approvals, cooldowns, rate limit, freezes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.model import ConfigError, DecisionStep, Proposal
from policies.gate import Gate, PastExecution
from policies.model import Policy, bundled_policy_path, load_policy

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
ACTIONS = {"rollback", "scale-up", "investigate"}


def _proposal(action: str = "rollback", subject: str = "checkout") -> Proposal:
    return Proposal(id="p-1", target="checkout", action=action, subject=subject, params={},
                    path=(DecisionStep("recent deployment", "deploy 4 min ago"),),
                    reason="x", created_at=NOW)


def _gate(**policy: object) -> Gate:
    return Gate(Policy.model_validate({"actions": {"rollback": {}, "scale-up": {"auto": True}},
                                       **policy}))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_propose_mode_asks_a_human_even_for_auto_actions() -> None:
    verdict = _gate().evaluate(_proposal("scale-up"), [], NOW)
    assert verdict.decision == "needs_approval" and verdict.approvals_required == 1
    assert verdict.reasons == ("propose mode: scale-up needs 1 approval",)


def test_auto_mode_allows_only_actions_marked_auto() -> None:
    gate = _gate(mode="auto")
    assert gate.evaluate(_proposal("scale-up"), [], NOW).decision == "allow"
    assert gate.evaluate(_proposal("rollback"), [], NOW).decision == "needs_approval"


def test_observe_mode_denies_everything() -> None:
    verdict = _gate(mode="observe").evaluate(_proposal(), [], NOW)
    assert verdict.decision == "deny" and "observe mode" in verdict.reasons[0]


def test_action_missing_from_policy_or_disallowed_is_denied() -> None:
    gate = _gate(actions={"rollback": {"allowed": False}})
    assert gate.evaluate(_proposal("rollback"), [], NOW).reasons == ("policy does not allow rollback",)
    assert gate.evaluate(_proposal("investigate"), [], NOW).decision == "deny"


def test_dry_run_mode_allows_but_marks_dry_run() -> None:
    verdict = _gate(mode="dry-run").evaluate(_proposal(), [], NOW)
    assert verdict.decision == "allow" and verdict.dry_run


def test_cooldown_denies_the_same_action_on_the_same_subject() -> None:
    history = [PastExecution("rollback", "checkout", "checkout", NOW - timedelta(minutes=5))]
    verdict = _gate(cooldown_minutes=15).evaluate(_proposal(), history, NOW)
    assert verdict.decision == "deny"
    assert verdict.reasons == ("cooldown: rollback on checkout ran at 02:55Z; next allowed after 03:10Z",)
    other = _gate(cooldown_minutes=15).evaluate(_proposal(subject="search"), history, NOW)
    assert other.decision == "needs_approval"


def test_rate_limit_turns_auto_into_needs_approval() -> None:
    history = [PastExecution("scale-up", "t", f"s{i}", NOW - timedelta(minutes=i + 1)) for i in range(3)]
    gate = _gate(mode="auto", rate_limit={"max_executions": 3, "per_minutes": 60})
    verdict = gate.evaluate(_proposal("scale-up"), history, NOW)
    assert verdict.decision == "needs_approval" and "rate limit" in verdict.reasons[0]


def test_change_freeze_stops_auto_and_can_deny() -> None:
    freeze = {"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=1), "reason": "Black Friday"}
    assert _gate(mode="auto", freezes=[freeze]).evaluate(_proposal("scale-up"), [], NOW).decision \
        == "needs_approval"
    denied = _gate(mode="auto", freezes=[{**freeze, "deny": True}]).evaluate(_proposal("scale-up"), [], NOW)
    assert denied.decision == "deny" and "Black Friday" in denied.reasons[0]


def test_auto_respects_severity_floor() -> None:
    gate = Gate(Policy.model_validate(
        {"mode": "auto", "actions": {"scale-up": {"auto": True, "max_severity_for_auto": 2}}}))
    assert gate.evaluate(_proposal("scale-up"), [], NOW, severity=3).decision == "needs_approval"
    assert gate.evaluate(_proposal("scale-up"), [], NOW, severity=1).decision == "allow"


def test_limits_travel_with_the_verdict() -> None:
    gate = Gate(Policy.model_validate({"actions": {"scale-up": {"limits": {"max_replicas": 8}}}}))
    assert gate.evaluate(_proposal("scale-up"), [], NOW).limits == {"max_replicas": 8}


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("mode: yolo\n", "mode", "Input should be 'observe', 'propose', 'auto' or 'dry-run'"),
    ("actions:\n  rollbak: {}\n", "actions.rollbak", "unknown action (known: investigate, rollback, scale-up)"),
    ("actions:\n  rollback: {approvals: 0}\n", "actions.rollback.approvals", "greater than or equal to 1"),
    ("freezes: [{start: 2026-12-01T00:00:00Z, end: 2026-11-01T00:00:00Z}]\n", "freezes.0",
     "end must be after start"),
    ("- just\n- a list\n", "", "must be a mapping at the top level"),
])
def test_bad_policy_refuses_to_load_naming_file_field_reason(tmp_path: Path, text: str, field: str,
                                                             reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_policy(path, ACTIONS)
    assert (err.value.source, err.value.field) == (str(path), field)
    assert reason in err.value.reason


@pytest.mark.parametrize("name", ["default", "staging-drill", "production"])
def test_bundled_policies_load_against_the_installed_actions(name: str, registry) -> None:  # type: ignore[no-untyped-def]
    policy = load_policy(bundled_policy_path(name), registry.actions)
    assert set(policy.actions) <= set(registry.actions)


def test_default_policy_never_executes_without_a_human(registry) -> None:  # type: ignore[no-untyped-def]
    gate = Gate(load_policy(bundled_policy_path("default"), registry.actions))
    for action in registry.actions:
        assert gate.evaluate(_proposal(action), [], NOW, severity=1).decision != "allow"


def test_gitops_rule_defaults_are_the_actions_defaults() -> None:
    from agent.model.gitops import DEFAULT_RULE
    from policies.model import GitOpsRule

    assert GitOpsRule().limits() == DEFAULT_RULE


def test_the_targets_gitops_rule_travels_with_a_rollback_verdict() -> None:
    gate = Gate(Policy.model_validate({"actions": {"rollback": {}, "investigate": {}},
                                       "gitops": {"*": {"rollback": "refuse"},
                                                  "checkout": {"rollback": "argocd", "may_suspend_sync": True}}}))
    limits = gate.evaluate(_proposal("rollback"), [], NOW).limits
    assert (limits["gitops_rollback"], limits["gitops_may_suspend_sync"]) == ("argocd", True)
    assert "gitops_rollback" not in gate.evaluate(_proposal("investigate"), [], NOW).limits


def test_a_failed_execution_starts_no_cooldown_unless_the_policy_says_so() -> None:
    failed = [PastExecution("rollback", "checkout", "checkout", NOW - timedelta(minutes=5), took_effect=False)]
    assert _gate(cooldown_minutes=15).evaluate(_proposal(), failed, NOW).decision == "needs_approval"
    strict = _gate(cooldown_minutes=15, cooldown_after_failure=True).evaluate(_proposal(), failed, NOW)
    assert strict.decision == "deny" and strict.blocked_by == "cooldown"


def test_a_cooldown_override_applies_only_where_the_rule_allows_it() -> None:
    ran = [PastExecution("rollback", "checkout", "checkout", NOW - timedelta(minutes=5))]
    allowed = _gate(actions={"rollback": {"cooldown_override": True}})
    assert allowed.evaluate(_proposal(), ran, NOW, override_cooldown=True).decision == "needs_approval"
    assert _gate().evaluate(_proposal(), ran, NOW, override_cooldown=True).decision == "deny"
