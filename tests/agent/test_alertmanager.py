"""The daemon behind the real Alertmanager (Debian's 0.25): alerts are injected through its v2
API and it delivers them to `hemostat run` as it would in production: first notification,
repeats every few seconds, resolves and re-fires. Its own counter of failed webhook
notifications is the judge of whether Hemostat honours the delivery contract."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.ledger import IncidentRecord
from tests.agent.daemon_harness import DaemonProcess, daemon_config, start_daemon, wait_until
from tests.loopback import LoopbackServer
from tests.services.alertmanager import Alertmanager, alert, start_alertmanager


@dataclass
class Chain:
    daemon: DaemonProcess
    manager: Alertmanager

    def incident(self, check: Callable[[IncidentRecord], bool]) -> IncidentRecord:
        def found() -> IncidentRecord | None:
            return next((i for i in self.daemon.ledger().incidents() if check(i)), None)
        result: IncidentRecord = wait_until(found, timeout_s=30)
        return result

    def events(self, incident_id: str, kind: str) -> list[Any]:
        return [e for e in self.daemon.ledger().events(incident_id=incident_id) if e.type == kind]

    def delivered(self, more_than: float) -> float:
        """Wait until Alertmanager has sent more than `more_than` webhook notifications."""
        got: float = wait_until(lambda: (n := self.manager.notifications()) > more_than and n, timeout_s=30)
        return got


@pytest.fixture
def chain(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path,
          alertmanager_binary: str) -> Iterator[Chain]:
    daemon = start_daemon(daemon_config(tmp_path, loopback, deploy_repo))
    manager = start_alertmanager(alertmanager_binary, tmp_path / "am", f"{daemon.url}/webhook/alertmanager",
                                 tmp_path / "token")
    try:
        yield Chain(daemon, manager)
    finally:
        manager.stop()
        daemon.stop(signal.SIGKILL)


def _ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_repeats_resolve_and_refire_are_all_delivered_without_a_failure(chain: Chain) -> None:
    started = _ago(2)
    chain.manager.post([alert("checkout", starts_at=started)])
    incident = chain.incident(lambda i: i.status == "identified")
    sent = chain.delivered(more_than=2)  # the first notification and at least two repeats
    assert chain.manager.failed_notifications() == 0
    assert len(chain.events(incident.id, "alert_fired")) == 1  # repeats acknowledged, recorded once

    chain.manager.post([alert("checkout", starts_at=started, ends_at=datetime.now(UTC))])
    assert chain.incident(lambda i: i.status == "monitoring").id == incident.id
    [resolved] = chain.events(incident.id, "alert_resolved")
    assert resolved.data["alerts"][0]["status"] == "resolved"

    chain.manager.post([alert("checkout", starts_at=datetime.now(UTC))])  # fires again
    reopened = chain.incident(lambda i: i.id == incident.id and i.status in ("investigating", "identified"))
    changes = chain.events(reopened.id, "status_changed")
    assert any(c.data.get("cause") == "refired" and c.data["from"] == "monitoring" for c in changes)
    wait_until(lambda: len(chain.events(incident.id, "triaged")) == 2, timeout_s=30)  # diagnosed again
    chain.delivered(more_than=sent + 2)
    assert chain.manager.failed_notifications() == 0
    assert len(chain.daemon.ledger().incidents()) == 1


def test_two_alert_groups_on_one_target_resolve_only_when_both_have(chain: Chain) -> None:
    started = _ago(3)
    errors = alert("checkout", "HighErrorRate", starts_at=started)
    latency = alert("checkout", "HighLatency", starts_at=started, severity="warning")
    chain.manager.post([errors, latency])
    incident = chain.incident(lambda i: i.status == "identified")
    wait_until(lambda: len({a["fingerprint"] for e in chain.events(incident.id, "alert_fired")
                            for a in e.data["alerts"]}) == 2, timeout_s=30)

    chain.manager.post([alert("checkout", "HighLatency", starts_at=started, severity="warning",
                              ends_at=datetime.now(UTC))])
    wait_until(lambda: chain.events(incident.id, "alert_resolved"), timeout_s=30)
    assert chain.daemon.ledger().incident(incident.id).status == "identified"  # errors still fire

    chain.manager.post([alert("checkout", "HighErrorRate", starts_at=started, ends_at=datetime.now(UTC))])
    done = chain.incident(lambda i: i.status == "monitoring")
    [change] = [c for c in chain.events(done.id, "status_changed") if c.data["to"] == "monitoring"]
    assert change.data["cause"] == "alerts_resolved"
    assert chain.manager.failed_notifications() == 0


def test_an_alert_that_began_40_minutes_ago_yields_a_proposal_a_human_can_approve(chain: Chain) -> None:
    started = _ago(40)
    chain.manager.post([alert("checkout", starts_at=started)])
    incident = chain.incident(lambda i: i.status == "identified")
    assert abs((incident.opened_at - started).total_seconds()) < 1  # the incident began with the alert
    ledger = chain.daemon.ledger()
    [record] = ledger.proposals(incident_id=incident.id)
    now = datetime.now(UTC)
    assert record.state == "proposed" and record.expires_at is not None
    assert record.expires_at - now > timedelta(minutes=25)  # the policy's 30 minutes, from now
    assert abs((record.proposal.created_at - now).total_seconds()) < 60
    approved = ledger.approve(record.id, "dana", now)
    assert approved.state == "approved"
    assert chain.manager.failed_notifications() == 0
