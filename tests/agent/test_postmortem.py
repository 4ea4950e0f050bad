"""Post-mortems from a real SQLite ledger timeline written through the ledger API at fixed times:
real times and durations, the root cause as found, action items specific to the evidence, and a
`--record`ed scenario that passes `hemostat drill`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from agent.diagnosis.decide import bind_incident
from agent.diagnosis.service import evaluate
from agent.diagnosis.wiring import build_app
from agent.incidents.postmortem import action_items, render_postmortem, scenario_from_incident, span
from agent.ledger import Event, IncidentRecord
from agent.ledger.sqlite import SqliteLedger
from agent.model import HemostatError, Observation
from agent.model.config import load_config

T0 = datetime(2026, 11, 27, 2, 55, tzinfo=UTC)
INC = "inc-20261127-0255-ab12"
SHA = "3f2a9c4" + "0" * 33


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def observations() -> list[Observation]:
    seen = at(1)
    return [
        Observation("git-deploys", "checkout", seen, {"commits": [
            {"sha": SHA, "short": "3f2a9c4", "at": at(-4).isoformat(), "author": "Dana",
             "subject": "v1.8 new payment flow", "merge": False, "tags": []}]}),
        Observation("app-metrics", "checkout", seen, {"url": "http://checkout/metrics", "scrapes": [
            # a process up for hours (1% of a million requests failed), then 80 of 200 in 2 s
            {"at": seen.isoformat(), "errors": 10_000, "requests": 1_000_000},
            {"at": (seen + timedelta(seconds=2)).isoformat(), "errors": 10_080, "requests": 1_000_200}]}),
        Observation("http-health", "checkout", seen, {"checks": [
            {"name": "payments", "url": "http://payments/health", "method": "HEAD", "expect": [200],
             "status": 200, "latency_ms": 3500.0}]}),
    ]


# Only `investigate` is sure to be installed, so the tree and policies here use it alone: the
# post-mortem reads whatever the ledger holds, whichever action that was.
TREE = {"version": 1, "branches": [
    {"name": "recent-deploy", "title": "recent deployment", "all": ["recent_deploy"],
     "any": ["error_spike"], "propose": [{"action": "investigate"}]},
    {"name": "otherwise", "title": "no single cause", "any": ["error_spike", "dependency_slow"],
     "fallback": True, "propose": [{"action": "investigate"}]},
]}
POLICY = {"version": 1, "mode": "propose", "actions": {"investigate": {"approvals": 1}}}
DRILL_POLICY = {"version": 1, "mode": "dry-run", "actions": {"investigate": {}}}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    for name, doc in (("tree.yaml", TREE), ("policy.yaml", POLICY), ("drill-policy.yaml", DRILL_POLICY)):
        (tmp_path / name).write_text(yaml.safe_dump(doc))
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"path": "ledger.db"}, "tree": "tree.yaml", "policy": "policy.yaml",
        "targets": [{"name": "checkout", "deployment": "checkout",
                     "dependencies": [{"name": "payments", "url": "http://payments/health"}]}],
    }))
    return path


def write_incident(config_path: Path) -> None:
    """The incident as the daemon and two engineers would have written it, minute by minute."""
    config = load_config(config_path)
    app = build_app(config)
    target = config.target("checkout")
    diagnosis = evaluate(app, target, observations(), at(1))
    ledger = SqliteLedger(config.store.path)
    try:
        ledger.open_incident(IncidentRecord(INC, "checkout", "Checkout 5xx above 5%", "opened", 3, T0, T0,
                                            "alertname=CheckoutErrors"), "alertmanager")
        ledger.append("alert_fired", "alertmanager", T0, incident_id=INC, data={"alerts": [
            {"summary": "Checkout 5xx above 5%", "labels": {"alertname": "CheckoutErrors"}}]})
        ledger.append("observations", "hemostat", at(1), incident_id=INC,
                      data={"observations": [o.to_json() for o in diagnosis.observations]})
        for finding in diagnosis.findings:
            ledger.append("finding", "hemostat", at(1), incident_id=INC, data=finding.to_json())
        ledger.append("triaged", "hemostat", at(1), incident_id=INC, data=diagnosis.triage.to_json())
        [proposal] = diagnosis.decision.proposals
        pid = ledger.add_proposal(bind_incident(proposal, INC), diagnosis.verdicts[proposal.id], at(1),
                                  at(31)).id
        ledger.set_incident_status(INC, "identified", "hemostat", at(1.1), severity=2)
        ledger.approve(pid, "bob", at(9))
        ledger.claim_execution(pid, "hemostat", at(9.5), {"summary": "hand checkout to the on-call engineer"})
        ledger.append("execution_finished", "hemostat", at(10.2), incident_id=INC, proposal_id=pid,
                      data={"ok": True, "detail": "handed to the on-call engineer", "facts": {}})
        ledger.append("verification", "hemostat", at(11), incident_id=INC, proposal_id=pid,
                      data={"ok": True, "detail": "error rate 0.4%", "facts": {}})
        ledger.transition(pid, "succeeded", "hemostat", at(11), {"verified": True, "detail": "error rate 0.4%"})
        ledger.set_incident_status(INC, "monitoring", "hemostat", at(11.1))
        ledger.set_incident_status(INC, "resolved", "alice", at(45), data={"note": "quiet for 30 min"})
    finally:
        ledger.close()


def load(config_path: Path) -> tuple[IncidentRecord, list[Event]]:
    ledger = SqliteLedger(load_config(config_path).store.path)
    try:
        return ledger.incident(INC), ledger.events(incident_id=INC)
    finally:
        ledger.close()


@pytest.fixture
def postmortem(config_path: Path) -> str:
    write_incident(config_path)
    return render_postmortem(*load(config_path))


def test_summary_has_date_duration_severity_and_impact(postmortem: str) -> None:
    assert postmortem.startswith("# Post-mortem: Checkout 5xx above 5%\n")
    for line in ("- **Date:** 2026-11-27 (UTC)", "- **Duration:** 45 min (02:55 to 03:40 UTC)",
                 "- **Severity:** SEV-2", "- **Impact:** 40% of checkout's requests failing",
                 "- **Time to identify:** 1 min", "- **Time to mitigate:** 10 min"):
        assert line in postmortem


def test_timeline_has_the_real_times_of_each_milestone_and_step(postmortem: str) -> None:
    for line in ("- **Alert fired:** 02:55:00 (+0 s)", "- **Investigation started:** 02:56:00 (+1 min)",
                 "- **Root cause identified:** 02:56:00 (+1 min)", "- **Mitigation applied:** 03:05:12 (+10 min)",
                 "- **Resolved:** 03:40:00 (+45 min)",
                 "| 02:55:00 | Alert fired: Checkout 5xx above 5% | alertmanager |",
                 "| 02:56:00 | Proposed investigate checkout (awaiting approval): deploy 3f2a9c4",
                 "| 03:04:00 | bob approved investigate checkout (1/1) | bob |",
                 "| 03:04:30 | Applying investigate checkout: hand checkout to the on-call engineer | hemostat |",
                 "| 03:05:12 | investigate checkout applied: handed to the on-call engineer | hemostat |",
                 "| 03:06:00 | investigate checkout verified: error rate 0.4% | hemostat |",
                 "| 03:06:00 | investigate checkout succeeded: error rate 0.4% | hemostat |",
                 "| 03:40:00 | Status monitoring -> resolved: quiet for 30 min | alice |"):
        assert line in postmortem, line


def test_root_cause_names_the_change_the_evidence_and_the_path_taken(postmortem: str) -> None:
    cause = postmortem.split("## Root cause")[1].split("## Action items")[0]
    assert ("**What changed:** deploy 3f2a9c4 (v1.8 new payment flow) by Dana landed 02:51, "
            "5 min before the incident") in cause
    assert "- SEV-2 `error_spike` checkout: 40% of requests failing" in cause
    assert "- SEV-3 `dependency_slow` payments: payments is slow: 3500 ms" in cause
    assert "- recent deployment (deploy 3f2a9c4" in cause and "→ **investigate checkout**: succeeded" in cause


def test_action_items_are_specific_to_the_evidence(config_path: Path) -> None:
    write_incident(config_path)
    items = action_items(*load(config_path))
    assert items["Prevent recurrence"] == [
        "Add a canary / progressive rollout for checkout, so deploy 3f2a9c4 would have reached a few "
        "users, not all"]
    assert items["Improve detection"] == ["Alert on checkout's error rate before users notice (it reached 40%)"]
    assert items["Reduce impact"] == [
        "Tighter client timeout + circuit breaker for payments",
        "Roll back checkout automatically when its error rate rises after a deploy"]
    assert items["Speed up response"] == [
        "investigate checkout waited 8 min for approval: shorten the path to an approver"]


def test_an_incident_no_alert_caught_asks_for_the_missing_alert() -> None:
    opened = IncidentRecord("inc-2", "checkout", "found by a sweep", "investigating", 3, T0, T0)
    items = action_items(opened, [Event(1, T0, "incident_opened", "hemostat", "inc-2")])
    assert items["Improve detection"][0].startswith("No alert fired: checkout's problem was found")


def test_an_open_incident_says_so_instead_of_a_duration() -> None:
    opened = IncidentRecord("inc-2", "checkout", "found by a sweep", "investigating", 3, T0, T0)
    text = render_postmortem(opened, [Event(1, T0, "incident_opened", "hemostat", "inc-2")])
    assert "- **Duration:** still open (investigating)" in text
    assert "- **Mitigation applied:** not reached" in text
    assert "- no mitigation was executed" in text


def test_alert_text_cannot_add_headings_html_links_or_table_cells_to_the_postmortem() -> None:
    """The audit: an alert summary opened headings and carried `<img onerror>` into the file."""
    hostile = ("Checkout down\n# Root cause: the DBA\n<img src=x onerror=alert(1)> "
               "[runbook](https://evil.example) | forged | cell |")
    opened = IncidentRecord("inc-3", "checkout", hostile, "investigating", 2, T0, T0)
    events = [Event(1, T0, "incident_opened", "alertmanager", "inc-3", data={"title": hostile}),
              Event(2, T0, "alert_fired", f"alertmanager\n## {hostile}", "inc-3",
                    data={"alerts": [{"labels": {}, "annotations": {"summary": hostile}}]})]
    text = render_postmortem(opened, events)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert [h.split(":")[0] for h in headings] == [
        "# Post-mortem", "## Summary", "## Timeline (UTC)", "## Root cause (as Hemostat found it; confirm or correct)",
        "## Action items (seeded from the evidence)", "### Prevent recurrence", "### Improve detection",
        "### Reduce impact", "### Speed up response"]
    assert "<img" not in text and "[runbook](" not in text and "\\[runbook\\](" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "alertmanager" in line]
    assert all(line.replace("\\|", "").count("|") == 4 for line in rows), rows


def test_spans_read_like_a_person_wrote_them() -> None:
    assert [span(timedelta(seconds=s)) for s in (40, 240, 4320)] == ["40 s", "4 min", "1 h 12 min"]


def test_scenario_from_incident_replays_the_first_diagnosis(config_path: Path) -> None:
    write_incident(config_path)
    incident, events = load(config_path)
    doc = scenario_from_incident(incident, events, {"name": "checkout"})
    assert doc["started_at"] == "2026-11-27T02:56:00+00:00"
    assert doc["expect"] == {"severity": "SEV-2", "actions": ["investigate"]}  # no tree: no branch names
    assert [o["probe"] for o in doc["observations"]] == ["git-deploys", "app-metrics", "http-health"]


def test_an_incident_never_diagnosed_cannot_become_a_drill() -> None:
    opened = IncidentRecord("inc-2", "checkout", "alert only", "opened", 3, T0, T0)
    with pytest.raises(HemostatError, match="no recorded observations") as err:
        scenario_from_incident(opened, [Event(1, T0, "incident_opened", "alertmanager", "inc-2")], {})
    assert err.value.code == "no_observations"


def run(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), "--user", "alice", *args])
    return result.exit_code, result.output


def test_cli_postmortem_writes_markdown_and_a_scenario_that_passes_the_drill(config_path: Path,
                                                                            tmp_path: Path) -> None:
    write_incident(config_path)
    scenario, markdown = tmp_path / "incident.yaml", tmp_path / "postmortem.md"
    code, out = run(config_path, "postmortem", INC[:16], "--record", str(scenario), "--output", str(markdown))
    assert code == 0, out
    assert markdown.read_text() == render_postmortem(*load(config_path))
    recorded: dict[str, Any] = yaml.safe_load(scenario.read_text())
    assert recorded["expect"] == {"severity": "SEV-2", "actions": ["investigate"], "branches": ["recent-deploy"]}
    code, out = run(config_path, "drill", str(scenario), "--policy", str(tmp_path / "drill-policy.yaml"))
    assert code == 0, out
    assert "1 passed, 0 failed" in out


def test_cli_postmortem_prints_to_stdout_without_output(config_path: Path) -> None:
    write_incident(config_path)
    code, out = run(config_path, "postmortem", INC)
    assert code == 0, out
    assert out.startswith("# Post-mortem: Checkout 5xx above 5%")


def test_cli_status_prints_the_current_update(config_path: Path) -> None:
    write_incident(config_path)
    code, out = run(config_path, "status", INC, "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert (doc["status"], doc["severity"], doc["next_update_at"]) == ("Resolved", "SEV-2", None)
    assert doc["impact"] == "40% of checkout's requests failing (n=200 in 2s, baseline 1% since the app started)"
    code, out = run(config_path, "status", INC)
    assert code == 0, out
    assert "Status: Resolved\n" in out and "Next update: none: resolved" in out
