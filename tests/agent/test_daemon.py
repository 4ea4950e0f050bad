"""The daemon as a real process on loopback: Alertmanager payloads over HTTP, the ledger
checked after each step, bad webhooks refused, graceful SIGTERM, kill -9 mid-execution."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agent.daemon_harness import (
    TOKEN,
    DaemonProcess,
    alert_payload,
    daemon_config,
    failing_metrics,
    now_iso,
    start_daemon,
    wait_until,
)
from tests.loopback import LoopbackServer
from tests.plugins.install import install_plugin


@pytest.fixture
def daemon(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> Iterator[DaemonProcess]:
    process = start_daemon(daemon_config(tmp_path, loopback, deploy_repo))
    yield process
    process.stop(signal.SIGKILL)


def _incident(daemon: DaemonProcess, status: str) -> Any:
    def check() -> Any:
        found = [i for i in daemon.ledger().incidents() if i.status == status]
        return found[0] if found else None
    return wait_until(check)


def test_alert_opens_an_incident_that_is_diagnosed_and_gets_a_proposal(daemon: DaemonProcess) -> None:
    status, answer = daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
    assert status == 202 and answer["accepted"] == 1
    incident = _incident(daemon, "identified")
    assert answer["incidents"] == [incident.id] and incident.severity == 1  # severity=critical label
    ledger = daemon.ledger()
    types = [e.type for e in ledger.events(incident_id=incident.id)]
    assert types[:2] == ["incident_opened", "alert_fired"]
    assert {"observations", "finding", "triaged", "proposal"} <= set(types)
    [proposal] = ledger.proposals(incident_id=incident.id)
    assert proposal.proposal.action == "rollback" and proposal.state == "proposed"


def test_repeats_are_acknowledged_once_and_resolved_moves_it_to_monitoring(daemon: DaemonProcess) -> None:
    starts = now_iso()
    daemon.post(alert_payload(starts_at=starts), TOKEN)
    incident = _incident(daemon, "identified")
    repeat = alert_payload(starts_at=starts)
    repeat["commonAnnotations"]["description"] = "still firing"  # a new body, the same alert
    assert daemon.post(repeat, TOKEN) == (200, {"accepted": 1, "recorded": 0, "duplicates": 1,
                                                "incidents": [incident.id]})
    assert daemon.post(alert_payload(status="resolved", starts_at=starts), TOKEN)[0] == 202
    assert _incident(daemon, "monitoring").id == incident.id
    types = [e.type for e in daemon.ledger().events(incident_id=incident.id)]
    assert types.count("alert_fired") == 1 and types.count("alert_resolved") == 1
    assert len(daemon.ledger().incidents()) == 1


def test_identical_redelivery_is_acknowledged_and_recorded_once(daemon: DaemonProcess) -> None:
    payload = alert_payload(starts_at=now_iso())
    assert daemon.post(payload, TOKEN)[0] == 202
    status, answer = daemon.post(payload, TOKEN)
    assert status == 200 and answer["duplicates"] == 1 and answer["recorded"] == 0
    assert [e.type for e in daemon.ledger().events()].count("alert_fired") == 1
    assert 'hemostat_alerts_total{result="duplicate"} 1.0' in daemon.get("/metrics")[1]


def test_unknown_target_is_recorded_logged_and_counted_not_dropped(daemon: DaemonProcess) -> None:
    payload = alert_payload(target="billing", starts_at=now_iso())
    status, answer = daemon.post(payload, TOKEN)
    assert status == 202 and answer["incidents"] == [] and answer["recorded"] == 1
    assert daemon.post(payload, TOKEN)[0] == 200  # a repeat is not recorded twice
    [event] = [e for e in daemon.ledger().events() if e.type == "alert_unmatched"]
    assert event.data["alerts"][0]["labels"]["hemostat_target"] == "billing"
    assert 'hemostat_alerts_total{result="unmatched"} 1.0' in daemon.get("/metrics")[1]
    assert "alerts match no target" in daemon.log.read_text()


def test_a_timestamp_without_timezone_is_refused_naming_the_field(daemon: DaemonProcess) -> None:
    status, answer = daemon.post(alert_payload(starts_at="2026-11-27T02:55:00"), TOKEN)
    assert status == 422 and "alerts.0.startsAt" in answer["error"] and "timezone" in answer["error"]
    assert daemon.ledger().incidents() == []


def test_grafana_unified_alerting_payload_opens_an_incident(daemon: DaemonProcess) -> None:
    """Grafana's webhook (version "1"): the same alert shape plus its own fields, no groupKey."""
    payload = alert_payload(starts_at=now_iso())
    payload.update(version="1", orgId=1, title="[FIRING:1] HighErrorRate", state="alerting",
                   message="checkout error rate above 5%")
    del payload["groupKey"]
    payload["alerts"][0].update(silenceURL="http://grafana/alerting/silence/new", values={"B": 0.37},
                                valueString="[ var='B' value=0.37 ]")
    status, answer = daemon.post(payload, TOKEN)
    assert status == 202
    incident = _incident(daemon, "identified")
    fired = [e for e in daemon.ledger().events(incident_id=incident.id) if e.type == "alert_fired"]
    assert answer["incidents"] == [incident.id] and fired[0].data["source"] == "grafana"


@pytest.mark.parametrize(("token", "raw", "status", "message"), [
    (None, None, 401, "missing or wrong bearer token"),
    ("wrong", None, 401, "missing or wrong bearer token"),
    (TOKEN, b"{not json", 400, "payload is not JSON"),
    (TOKEN, b'{"version": "3", "groupKey": "g", "status": "firing", "alerts": []}', 422,
     "not an Alertmanager (v4) or Grafana (v1) alert payload: version"),
    (TOKEN, b"x" * 70000, 413, "over the 65536-byte limit"),
])
def test_bad_webhooks_get_4xx_and_the_daemon_stays_up(daemon: DaemonProcess, token: str | None,
                                                      raw: bytes | None, status: int, message: str) -> None:
    got, answer = daemon.post(alert_payload(starts_at=now_iso()), token, raw=raw)
    assert got == status and message in answer["error"]
    assert daemon.get("/healthz")[0] == 200
    assert daemon.ledger().incidents() == []


def test_metrics_and_readiness(daemon: DaemonProcess) -> None:
    daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
    _incident(daemon, "identified")
    status, text = daemon.get("/metrics")
    assert status == 200
    assert 'hemostat_webhooks_total{result="202"} 1.0' in text
    assert 'hemostat_proposals_total{action="rollback",verdict="needs_approval"} 1.0' in text
    assert 'hemostat_probe_duration_seconds_count{probe="git-deploys"} 1.0' in text
    assert daemon.get("/readyz") == (200, json.dumps({"status": "ready"}))


def test_sigterm_drains_and_exits_cleanly(daemon: DaemonProcess) -> None:
    daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
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
    config = daemon_config(tmp_path, loopback, deploy_repo, failing_metrics(loopback, healed_by=marker),
                           tree=str(tree), policy=str(policy), executor={"claim_lease_s": sleep_s + 2})
    return MarkerSetup(config, {"PYTHONPATH": f"{site}:{Path(__file__).resolve().parents[2]}"}, marker)


def test_kill_9_mid_execution_then_restart_never_runs_it_twice(tmp_path: Path, loopback: LoopbackServer,
                                                               deploy_repo: Path) -> None:
    setup = marker_setup(tmp_path, loopback, deploy_repo, sleep_s=3)
    config, env, marker = setup.config, setup.env, setup.marker
    first = start_daemon(config, env)
    first.post(alert_payload(starts_at=now_iso()), TOKEN)
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
        daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
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
    config = daemon_config(tmp_path, loopback, deploy_repo,
                     notifiers=[{"type": "slack", "url": {"env": "HEMOSTAT_TEST_SLACK_URL"}}])
    daemon = start_daemon(config, {"HEMOSTAT_TEST_SLACK_URL": hook})
    try:
        daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
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
