"""Drill scenario files: bad ones are refused with the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import Config
from agent.drill import load_scenario, run_drill
from agent.model import ConfigError
from agent.registry import Registry
from agent.wiring import build_app
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
