"""The daemon as a real process on loopback: Alertmanager payloads over HTTP, the ledger
checked after each step, bad webhooks refused, graceful SIGTERM, kill -9 mid-execution."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agent.daemon_harness import DaemonProcess, alert_payload, start_daemon, wait_until
from tests.conftest import git_commit
from tests.loopback import LoopbackServer
from tests.plugins.install import install_plugin

TOKEN = "test-webhook-token-123"


def _now_iso(minutes_ago: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _failing_metrics(loopback: LoopbackServer) -> str:
    state = {"n": 0}

    def body() -> str:
        state["n"] += 1
        return f"http_requests_total {1000 + 200 * state['n']}\nhttp_requests_errors_total {80 * state['n']}\n"

    return loopback.route("/metrics", body=body)


def _config(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path, **extra: Any) -> Path:
    git_commit(deploy_repo, "checkout v1.8", datetime.now(UTC) - timedelta(minutes=4))
    (tmp_path / "token").write_text(TOKEN)
    config = {
        "store": {"path": "ledger.db"},
        "sweeps": False,
        "intake": {"token": {"file": str(tmp_path / "token")}, "max_body_bytes": 65536},
        "targets": [{"name": "checkout", "deployment": "checkout",
                     "probes": ["git-deploys", "app-metrics"],  # no cluster in these tests
                     "deploy_repo": {"path": str(deploy_repo)},
                     "metrics": {"url": _failing_metrics(loopback), "scrape_interval_s": 0.05}}],
        **extra,
    }
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def daemon(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> Iterator[DaemonProcess]:
    process = start_daemon(_config(tmp_path, loopback, deploy_repo))
    yield process
    process.stop(signal.SIGKILL)


def _incident(daemon: DaemonProcess, status: str) -> Any:
    def check() -> Any:
        found = [i for i in daemon.ledger().incidents() if i.status == status]
        return found[0] if found else None
    return wait_until(check)


def test_alert_opens_an_incident_that_is_diagnosed_and_gets_a_proposal(daemon: DaemonProcess) -> None:
    status, answer = daemon.post(alert_payload(starts_at=_now_iso()), TOKEN)
    assert status == 202 and answer["accepted"] == 1
    incident = _incident(daemon, "identified")
    assert answer["incidents"] == [incident.id] and incident.severity == 1  # severity=critical label
    ledger = daemon.ledger()
    types = [e.type for e in ledger.events(incident_id=incident.id)]
    assert types[:2] == ["incident_opened", "alert_fired"]
    assert {"observations", "finding", "triaged", "proposal"} <= set(types)
    [proposal] = ledger.proposals(incident_id=incident.id)
    assert proposal.proposal.action == "rollback" and proposal.state == "proposed"


def test_repeats_join_the_incident_and_resolved_moves_it_to_monitoring(daemon: DaemonProcess) -> None:
    starts = _now_iso()
    daemon.post(alert_payload(starts_at=starts), TOKEN)
    incident = _incident(daemon, "identified")
    repeat = alert_payload(starts_at=starts)
    repeat["commonAnnotations"]["description"] = "still firing"  # a new body, same group
    assert daemon.post(repeat, TOKEN)[0] == 202
    assert daemon.post(alert_payload(status="resolved", starts_at=starts), TOKEN)[0] == 202
    assert _incident(daemon, "monitoring").id == incident.id
    types = [e.type for e in daemon.ledger().events(incident_id=incident.id)]
    assert "alert_repeated" in types and "alert_resolved" in types
    assert len(daemon.ledger().incidents()) == 1


def test_unknown_target_is_recorded_not_dropped(daemon: DaemonProcess) -> None:
    status, answer = daemon.post(alert_payload(target="billing", starts_at=_now_iso()), TOKEN)
    assert status == 202 and answer["incidents"] == []
    [event] = [e for e in daemon.ledger().events() if e.type == "alert_unmatched"]
    assert event.data["alerts"][0]["labels"]["hemostat_target"] == "billing"


@pytest.mark.parametrize(("token", "raw", "status", "message"), [
    (None, None, 401, "missing or wrong bearer token"),
    ("wrong", None, 401, "missing or wrong bearer token"),
    (TOKEN, b"{not json", 400, "payload is not JSON"),
    (TOKEN, b'{"version": "3", "groupKey": "g", "status": "firing", "alerts": []}', 422,
     "not an Alertmanager v4 payload: version"),
    (TOKEN, b"x" * 70000, 413, "over the 65536-byte limit"),
])
def test_bad_webhooks_get_4xx_and_the_daemon_stays_up(daemon: DaemonProcess, token: str | None,
                                                      raw: bytes | None, status: int, message: str) -> None:
    got, answer = daemon.post(alert_payload(starts_at=_now_iso()), token, raw=raw)
    assert got == status and message in answer["error"]
    assert daemon.get("/healthz")[0] == 200
    assert daemon.ledger().incidents() == []


def test_replayed_identical_payload_is_refused(daemon: DaemonProcess) -> None:
    payload = alert_payload(starts_at=_now_iso())
    assert daemon.post(payload, TOKEN)[0] == 202
    status, answer = daemon.post(payload, TOKEN)
    assert status == 409 and "replay" in answer["error"]


def test_metrics_and_readiness(daemon: DaemonProcess) -> None:
    daemon.post(alert_payload(starts_at=_now_iso()), TOKEN)
    _incident(daemon, "identified")
    status, text = daemon.get("/metrics")
    assert status == 200
    assert 'hemostat_webhooks_total{result="202"} 1.0' in text
    assert 'hemostat_proposals_total{action="rollback",verdict="needs_approval"} 1.0' in text
    assert 'hemostat_probe_duration_seconds_count{probe="git-deploys"} 1.0' in text
    assert daemon.get("/readyz") == (200, json.dumps({"status": "ready"}))


def test_sigterm_drains_and_exits_cleanly(daemon: DaemonProcess) -> None:
    daemon.post(alert_payload(starts_at=_now_iso()), TOKEN)
    assert daemon.stop(signal.SIGTERM) == 0
    assert "stopped" in daemon.log.read_text()


@dataclass
class MarkerSetup:
    """A daemon config whose tree proposes the test plugin `slow-marker`, auto-allowed."""

    config: Path
    env: dict[str, str]
    marker: Path


def marker_setup(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path, sleep_s: float) -> MarkerSetup:
    marker = tmp_path / "marker"
    site = install_plugin(tmp_path / "site", "slow_marker.py",
                          "[hemostat.actions]\nslow-marker = slow_marker:SlowMarker\n")
    tree = tmp_path / "tree.yaml"
    tree.write_text(yaml.safe_dump({"version": 1, "branches": [{
        "name": "errors", "title": "errors", "any": ["error_spike"],
        "propose": [{"action": "slow-marker", "params": {"file": str(marker), "sleep_s": sleep_s}}]}]}))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"mode": "auto", "actions": {"slow-marker": {"auto": True}}}))
    # The claim's lease outlasts the marker's sleep: a live execution is never cut short.
    config = _config(tmp_path, loopback, deploy_repo, tree=str(tree), policy=str(policy),
                     executor={"claim_lease_s": sleep_s + 2})
    return MarkerSetup(config, {"PYTHONPATH": f"{site}:{Path(__file__).resolve().parents[2]}"}, marker)


def test_kill_9_mid_execution_then_restart_never_runs_it_twice(tmp_path: Path, loopback: LoopbackServer,
                                                               deploy_repo: Path) -> None:
    setup = marker_setup(tmp_path, loopback, deploy_repo, sleep_s=3)
    config, env, marker = setup.config, setup.env, setup.marker
    first = start_daemon(config, env)
    first.post(alert_payload(starts_at=_now_iso()), TOKEN)
    wait_until(lambda: marker.exists() and "start" in marker.read_text())
    first.stop(signal.SIGKILL, timeout=10)
    [record] = first.ledger().proposals()
    assert record.state == "executing"

    second = start_daemon(config, env)
    try:
        settled = wait_until(lambda: first.ledger().proposal(record.id).state in ("succeeded", "failed")
                             and first.ledger().proposal(record.id))
    finally:
        second.stop(signal.SIGKILL)
    assert marker.read_text().split() == ["start"]  # executed once, never re-run
    assert settled.state == "failed"
    events = first.ledger().events(proposal_id=record.id)
    assert [e.type for e in events].count("execution_started") == 1
    failed = [e for e in events if e.type == "proposal_failed"][0]
    assert failed.data["reconciled"] is True and "not re-run" in failed.data["detail"]


def test_auto_policy_executes_once_and_verifies(tmp_path: Path, loopback: LoopbackServer,
                                                deploy_repo: Path) -> None:
    setup = marker_setup(tmp_path, loopback, deploy_repo, sleep_s=0)
    marker = setup.marker
    daemon = start_daemon(setup.config, setup.env)
    try:
        daemon.post(alert_payload(starts_at=_now_iso()), TOKEN)
        incident = _incident(daemon, "monitoring")
    finally:
        daemon.stop(signal.SIGKILL)
    assert marker.read_text().split() == ["start", "done"]
    [record] = daemon.ledger().proposals(incident_id=incident.id)
    assert record.state == "succeeded" and record.claimed_by == "hemostat"
    types = [e.type for e in daemon.ledger().events(proposal_id=record.id)]
    assert types == ["proposal", "execution_started", "execution_finished", "verification",
                     "proposal_succeeded"]


def test_a_plugin_that_fails_to_import_stops_start_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    site = install_plugin(tmp_path / "site", None, "[hemostat.probes]\nbroken = no_such_module:Probe\n",
                          name="broken")
    result = subprocess.run([str(Path(sys.executable).parent / "hemostat"), "plugins"], capture_output=True,
                            text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert ("plugin 'broken' (no_such_module:Probe) in group hemostat.probes: failed to load: "
            "ModuleNotFoundError: No module named 'no_such_module'") in result.stderr


def test_status_updates_reach_a_slack_webhook_and_are_recorded(tmp_path: Path, loopback: LoopbackServer,
                                                               deploy_repo: Path) -> None:
    hook = loopback.route("/services/T1/B2/sekrit", status=200, body="ok")
    config = _config(tmp_path, loopback, deploy_repo,
                     notifiers=[{"type": "slack", "url": {"env": "HEMOSTAT_TEST_SLACK_URL"}}])
    daemon = start_daemon(config, {"HEMOSTAT_TEST_SLACK_URL": hook})
    try:
        daemon.post(alert_payload(starts_at=_now_iso()), TOKEN)
        incident = _incident(daemon, "identified")
        wait_until(lambda: len(loopback.posts.get("/services/T1/B2/sekrit", [])) >= 2)
    finally:
        daemon.stop(signal.SIGKILL)
    messages = [json.loads(b)["text"] for b in loopback.posts["/services/T1/B2/sekrit"]]
    assert any(m.startswith("Investigating: SEV-1") for m in messages)
    assert any(m.startswith("Identified: SEV-1") for m in messages)
    notes = [e for e in daemon.ledger().events(incident_id=incident.id) if e.type == "notification"]
    assert notes and all(n.data["ok"] for n in notes)
    assert "sekrit" not in json.dumps([n.data for n in notes])
