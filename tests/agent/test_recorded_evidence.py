"""What the ledger shows and keeps. An approver sees what a proposal would do before approving
it: `show` and `proposals --json` carry the preview (pids and queries, revision and image,
replicas from -> to) and the evidence for and against. A failing health check, whose evidence
has no clock, is dated by the incident's earlier sweeps. All read back from a real SQLite ledger."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from agent.diagnosis.service import evaluate
from agent.diagnosis.wiring import build_app
from agent.incidents.lifecycle import record_diagnosis
from agent.ledger.sqlite import SqliteLedger
from agent.model.config import load_config
from tests import corpus_playbook as playbook
from tests import corpus_traps as traps
from tests.incidents import Incident


def _recorded(tmp_path: Path, incident: Incident) -> Path:
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump({"store": {"path": str(tmp_path / "ledger.db")}, "targets": [incident.target]}))
    config = load_config(path)
    app = build_app(config)
    diagnosis = evaluate(app, incident.spec, incident.observations, incident.started_at)
    ledger = SqliteLedger(config.store.path)
    try:
        record_diagnosis(app, ledger, diagnosis, "hemostat", incident.started_at)
    finally:
        ledger.close()
    return path


def _cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "--user", "alice", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_proposals_json_and_show_carry_the_pids_and_queries_kill_queries_would_cancel(tmp_path: Path) -> None:
    config = _recorded(tmp_path, playbook.lock_chain())
    [proposal] = json.loads(_cli(config, "proposals", "--json"))
    assert proposal["params"]["pids"] == [4242]
    assert proposal["preview"]["sessions"][0] == {"pid": 4242, "user": "checkout", "state": "idle in transaction",
                                                  "query": "UPDATE orders SET total = ? WHERE id = ?", "blocks": 6}
    shown = _cli(config, "show", proposal["id"])
    assert "would:   would cancel 1 root blocker(s) in postgres:shop: pid 4242" in shown
    assert "pid 4242 checkout idle in transaction: UPDATE orders SET total = ? WHERE id = ?" in shown


def test_show_gives_the_rollback_target_and_the_evidence_for_and_against(tmp_path: Path) -> None:
    config = _recorded(tmp_path, traps.change_before_mixed_errors())  # not every error names stripe
    records = {r["action"]: r for r in json.loads(_cli(config, "proposals", "--json"))}
    shown = _cli(config, "show", records["rollback"]["id"])
    assert "(alternative)" in shown
    assert "against: alternative: dependency down is better supported" in shown
    assert "for:     deploy " in shown and "landed 02:54, 1 min before errors began at 02:55" in shown
    breaker = _cli(config, "show", records["circuit-break"]["id"])
    assert "for:     the app's errors name stripe" in breaker


def test_a_failing_health_check_is_dated_by_the_incidents_earlier_sweeps(tmp_path: Path) -> None:
    from agent.diagnosis.service import past_findings
    from tests.incidents import at, health

    earlier = playbook.dependency_slow()
    earlier.observations = [health(earlier.spec, {"stripe": (503, None, None, 30.0)}, when=at(-10))]
    earlier.started_at = at(-10)
    config = _recorded(tmp_path, earlier)
    app = build_app(load_config(config))
    ledger = SqliteLedger(load_config(config).store.path)
    try:
        past = past_findings(ledger, "checkout")
    finally:
        ledger.close()
    now = evaluate(app, earlier.spec, [health(earlier.spec, {"stripe": (503, None, None, 30.0)})], at(0),
                   past=past)
    [down] = [f for f in now.findings if f.kind == "dependency_down"]
    assert (down.onset, down.onset_from) == (at(-10), "first seen in the incident's earlier sweeps")
    assert now.triage.since == at(-10)
