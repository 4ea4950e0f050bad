"""The whole real chain: an app on loopback whose error counter climbs -> Prometheus 2.42 rule ->
Alertmanager 0.25 -> `hemostat run`. The app fails, recovers and fails again; Alertmanager's own
failed-notification counter must stay 0 through first deliveries, repeats, the resolve and the
re-fire, and the incident must follow: identified, monitoring, re-opened and diagnosed again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.ledger import IncidentRecord
from tests.agent.alert_chain import Chain, ErrorApp, start_chain
from tests.agent.daemon_harness import daemon_config, wait_until
from tests.loopback import LoopbackServer
from tests.services.prometheus import StartPrometheus


@pytest.fixture
def chain(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path, alertmanager_binary: str,
          prometheus: StartPrometheus) -> Iterator[Chain]:
    app = ErrorApp(["checkout"])
    urls = app.mount(loopback)
    config = daemon_config(tmp_path, loopback, deploy_repo, metrics_url=urls["checkout"])
    started = start_chain(app, loopback, config, tmp_path / "token", alertmanager_binary, prometheus)
    try:
        yield started
    finally:
        started.stop()


def _incident(chain: Chain, status: str) -> IncidentRecord:
    found: IncidentRecord = wait_until(
        lambda: next((i for i in chain.daemon.ledger().incidents() if i.status == status), None), 40)
    return found


def _events(chain: Chain, incident: IncidentRecord, kind: str) -> list[Any]:
    return [e for e in chain.daemon.ledger().events(incident_id=incident.id) if e.type == kind]


def test_fail_recover_fail_through_prometheus_and_alertmanager_loses_no_notification(chain: Chain) -> None:
    chain.app.fail("checkout")
    incident = _incident(chain, "identified")
    [proposal] = chain.daemon.ledger().proposals(incident_id=incident.id)
    assert proposal.proposal.action == "rollback" and proposal.state == "proposed"
    wait_until(lambda: chain.manager.notifications() >= 3, 30)  # first delivery and repeats
    assert chain.manager.failed_notifications() == 0
    assert len(_events(chain, incident, "alert_fired")) == 1

    chain.app.recover("checkout")
    assert _incident(chain, "monitoring").id == incident.id
    assert _events(chain, incident, "alert_resolved")
    sent = chain.manager.notifications()

    chain.app.fail("checkout")  # the same alert fires again: a new startsAt
    wait_until(lambda: len(_events(chain, incident, "triaged")) == 2, 40)
    reopened = [c for c in _events(chain, incident, "status_changed") if c.data.get("cause") == "refired"]
    assert reopened and reopened[0].data["from"] == "monitoring"
    wait_until(lambda: chain.manager.notifications() >= sent + 2, 30)
    assert chain.manager.failed_notifications() == 0
    assert [i.id for i in chain.daemon.ledger().incidents()] == [incident.id]
