"""Drill scenario files: bad ones are refused with the file, the field and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agent.diagnosis.drill import load_scenario, run_drill
from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.model import ConfigError
from agent.model.config import Config
from policies.model import bundled_policy_path

GOOD = {
    "name": "errors with a deploy",
    "started_at": "2026-11-27T02:55:00+00:00",
    "target": {"name": "checkout", "deployment": "checkout"},
    "observations": [{
        "probe": "git-deploys", "target": "checkout", "collected_at": "2026-11-27T02:55:00+00:00",
        "data": {"commits": [{"sha": "3f2a9c4" + "0" * 33, "short": "3f2a9c4", "at": "2026-11-27T02:51:00+00:00",
                              "author": "Dana", "subject": "v1.8", "merge": False, "tags": []}]},
    }, {
        "probe": "app-metrics", "target": "checkout", "collected_at": "2026-11-27T02:55:00+00:00",
        "data": {"url": "http://app/metrics", "scrapes": [
            {"at": "2026-11-27T02:55:00+00:00", "errors": 10, "requests": 1000},
            {"at": "2026-11-27T02:55:02+00:00", "errors": 90, "requests": 1200}]},
    }],
    "expect": {"severity": "SEV-2", "branches": ["recent-deploy"], "actions": ["rollback"]},
}


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def _without(key: str) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(("doc", "field", "reason"), [
    (_without("target"), "target", "Field required"),
    ({**GOOD, "expect": {"severity": "SEV-9"}}, "expect.severity", "severity must be SEV-1..SEV-4"),
    ({**GOOD, "started_at": "yesterday"}, "started_at", "Input should be a valid datetime"),
    ({**GOOD, "started_at": "2026-11-27T02:55:00"}, "started_at", "needs a timezone"),
    ({**GOOD, "observations": [{"probe": "git-deploys"}]}, "observations.0.target", "Field required"),
    ({**GOOD, "expect": {"actions": ["rollback"], "verdict": "allow"}}, "expect.verdict",
     "Extra inputs are not permitted"),
    ("- a\n- list\n", "", "a scenario must be a mapping"),
])
def test_bad_scenario_names_file_field_and_reason(tmp_path: Path, doc: object, field: str, reason: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert (err.value.source, err.value.field) == (str(path), field)
    assert reason in err.value.reason


def test_unknown_probe_in_a_scenario_is_named(tmp_path: Path) -> None:
    doc = {**GOOD, "observations": [{**GOOD["observations"][0], "probe": "git-deploy"}]}
    path = _write(tmp_path, doc)
    app = build_app(Config(), Registry.discover(), bundled_policy_path("staging-drill"))
    with pytest.raises(ConfigError, match=r"observations\.0\.probe: unknown probe 'git-deploy'"):
        run_drill(app, path)


def test_good_scenario_passes_and_a_wrong_expectation_fails(tmp_path: Path) -> None:
    app = build_app(Config(), Registry.discover(), bundled_policy_path("staging-drill"))
    assert run_drill(app, _write(tmp_path, GOOD)).passed
    wrong = run_drill(app, _write(tmp_path, {**GOOD, "expect": {"severity": "SEV-1", "branches": ["database"]}}))
    assert wrong.failures == ("severity: expected SEV-1, got SEV-2",
                              "branches: expected ['database'], got ['recent-deploy']")


def test_a_drill_never_allows_a_real_execution(tmp_path: Path) -> None:
    policy = tmp_path / "auto.yaml"
    policy.write_text("mode: auto\nactions:\n  rollback: {auto: true}\n")
    app = build_app(Config(), Registry.discover(), policy)
    result = run_drill(app, _write(tmp_path, GOOD))
    assert "rollback: a drill must never allow a real execution" in result.failures


def _incident_file(tmp_path: Path, build: object, **expect: object) -> Path:
    from tests.incidents import Incident

    incident: Incident = build()  # type: ignore[operator]
    incident.expect = dict(expect)
    return _write(tmp_path, json.loads(json.dumps(incident.scenario())))


def test_expectations_say_what_matters_and_name_what_failed(tmp_path: Path) -> None:
    from tests import corpus_playbook as playbook
    from tests.incidents import at

    app = build_app(Config(), Registry.discover(), bundled_policy_path("staging-drill"))
    good = _incident_file(tmp_path, playbook.lock_chain, not_actions=["feature-flag-off"],
                          any_of=["kill-queries", "investigate"], params={"kill-queries": {"pids": [4242]}},
                          since=at(-7), complete=True, first="kill-queries")
    assert run_drill(app, good).passed
    bad = _incident_file(tmp_path, playbook.lock_chain, not_actions=["kill-queries"], any_of=["rollback"],
                         params={"kill-queries": {"pids": [1]}}, since=at(-1), complete=False, first="rollback")
    failures = run_drill(app, bad).failures
    assert [f.split(":")[0] for f in failures] == ["not_actions", "any_of", "first", "params", "since", "complete"]
    assert "kill-queries postgres:shop" in failures[0]  # the proposal's own reason, to see why
    assert failures[3].startswith("params: expected kill-queries with {'pids': [1]}, got [{")


def test_history_replays_past_executions_into_the_gate(tmp_path: Path) -> None:
    from tests import corpus_playbook as playbook
    from tests.incidents import at

    policy = tmp_path / "cooldown.yaml"
    policy.write_text("mode: dry-run\ncooldown_minutes: 30\nactions:\n  rollback: {}\n  investigate: {}\n")
    app = build_app(Config(), Registry.discover(), policy)
    path = _incident_file(tmp_path, playbook.bad_release, actions=["rollback"])
    assert run_drill(app, path).diagnosis.verdicts  # no history: proposed and gated
    doc = yaml.safe_load(path.read_text())
    doc["history"] = [{"action": "rollback", "subject": "checkout", "at": at(-10).isoformat()}]
    replayed = run_drill(app, _write(tmp_path, doc)).diagnosis
    [verdict] = replayed.verdicts.values()
    assert verdict.decision == "deny" and "cooldown" in " ".join(verdict.reasons)


def test_drill_json_prints_the_conclusions(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agent.cli.main import cli
    from tests import corpus_playbook as playbook

    path = _incident_file(tmp_path, playbook.rollout_crash_loop, actions=["rollback"])
    result = CliRunner().invoke(cli, ["drill", "--json", str(path)])
    [doc] = json.loads(result.output.rsplit("\n", 2)[0])
    assert (doc["passed"], doc["severity"], doc["complete"], doc["branches"]) == (True, "SEV-2", True,
                                                                                  ["recent-deploy"])
    [proposal] = doc["proposals"]
    assert proposal["params"] == {"to_revision": 6} and proposal["role"] == "primary"
    assert proposal["preview"]["to_image"] == "shop/checkout:v1.8.2"
    assert proposal["support"] and proposal["verdict"] == "allow"
