"""Verification by effect, through the daemon: a mitigation whose effect is in place but whose
symptom stays is "not verified" and escalates; one whose symptom goes is verified.

A real daemon process, a real loopback app (its /metrics), a real dependency health endpoint
and a real file the failover switches. The app either ignores the file (the trap: every request
keeps failing) or reads it (it recovers once the file names the secondary).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import yaml

from tests.agent.daemon_harness import TOKEN, alert_payload, now_iso, start_daemon, wait_until
from tests.loopback import LoopbackServer

PRIMARY, SECONDARY = "https://api.stripe.com", "https://api.adyen.com"


def app_metrics(loopback: LoopbackServer, routing: Path, reads_the_file: bool) -> str:
    """An app failing 40% of its requests while it calls the primary provider."""
    state = {"n": 0, "errors": 0}

    def body() -> str:
        state["n"] += 1
        switched = reads_the_file and SECONDARY in routing.read_text()
        state["errors"] += 0 if switched else 80
        return f"http_requests_total {1000 + 200 * state['n']}\nhttp_requests_errors_total {state['errors']}\n"

    return loopback.route("/metrics", body=body)


def config(tmp_path: Path, loopback: LoopbackServer, reads_the_file: bool) -> tuple[Path, Path]:
    routing = tmp_path / "routing.yaml"
    routing.write_text(f"payments:\n  endpoint: {PRIMARY}\n")
    (tmp_path / "token").write_text(TOKEN)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"mode": "auto", "actions": {"failover": {"auto": True}}}))
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"path": "ledger.db"}, "sweeps": False, "policy": str(policy),
        "intake": {"token": {"file": str(tmp_path / "token")}},
        "executor": {"symptom_settle_s": 1.0, "symptom_poll_s": 0.2},
        "targets": [{
            "name": "checkout", "deployment": "checkout", "probes": ["app-metrics", "http-health"],
            "metrics": {"url": app_metrics(loopback, routing, reads_the_file), "scrape_interval_s": 0.05},
            "dependencies": [{"name": "stripe", "url": loopback.route("/stripe/health", status=503),
                              "fallback": {"backend": "file", "path": str(routing), "key": "payments.endpoint",
                                           "primary": PRIMARY, "secondary": SECONDARY}}]}]}))
    return path, routing


def run_incident(tmp_path: Path, loopback: LoopbackServer, reads_the_file: bool) -> tuple[Any, Any, Path]:
    path, routing = config(tmp_path, loopback, reads_the_file)
    daemon = start_daemon(path, {})
    try:
        daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
        record = wait_until(lambda: next((p for p in daemon.ledger().proposals()
                                          if p.proposal.action == "failover"
                                          and p.state in ("succeeded", "failed")), None), timeout_s=60)
        ledger = daemon.ledger()
        incident = wait_until(lambda: next((i for i in ledger.incidents()
                                            if i.status in ("monitoring", "investigating")), None))
    finally:
        daemon.stop(signal.SIGKILL)
    return ledger, (record, incident), routing


def test_a_failover_the_app_ignores_is_not_verified_and_escalates(tmp_path: Path,
                                                                 loopback: LoopbackServer) -> None:
    ledger, (record, incident), routing = run_incident(tmp_path, loopback, reads_the_file=False)
    assert SECONDARY in routing.read_text()  # the effect is in place...
    assert record.state == "failed"  # ...and still it is not a mitigation
    [verification] = [e for e in ledger.events(proposal_id=record.id) if e.type == "verification"]
    assert verification.data["ok"] is False
    assert verification.data["facts"]["effect"] == "in place"
    assert verification.data["facts"]["symptom"] == "persists"
    assert verification.data["detail"].startswith(
        f"not verified: the effect is in place (file {routing} key payments.endpoint is '{SECONDARY}'), "
        "but the symptom persists: 40% of requests failing")
    escalated = [e for e in ledger.events(proposal_id=record.id) if e.type == "escalated"]
    assert escalated and "the symptom persists" in escalated[0].data["reason"]
    assert ledger.incident(incident.id).status == "investigating"


def test_a_failover_that_stops_the_errors_is_verified(tmp_path: Path, loopback: LoopbackServer) -> None:
    ledger, (record, incident), _ = run_incident(tmp_path, loopback, reads_the_file=True)
    assert record.state == "succeeded"
    [verification] = [e for e in ledger.events(proposal_id=record.id) if e.type == "verification"]
    assert verification.data["facts"]["symptom"] == "gone"
    assert "no error_spike on checkout" in verification.data["detail"]
    assert ledger.incident(incident.id).status == "monitoring"
