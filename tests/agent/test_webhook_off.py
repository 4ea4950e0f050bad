"""`intake.webhook: false` (the chart's way to install without a webhook token): the daemon
runs, serves health, and answers 404 on the webhook path (not mounted), recording nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import yaml

from tests.agent.daemon_harness import TOKEN, alert_payload, daemon_config, now_iso, start_daemon
from tests.loopback import LoopbackServer


def test_webhook_off_answers_404_and_records_nothing(tmp_path: Path, loopback: LoopbackServer,
                                                    deploy_repo: Path) -> None:
    path = daemon_config(tmp_path, loopback, deploy_repo)
    config = yaml.safe_load(path.read_text())
    config["intake"] = {"webhook": False}  # and no token
    path.write_text(yaml.safe_dump(config))
    daemon = start_daemon(path)
    try:
        status, answer = daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
        assert status == 404, answer  # the route is not mounted at all
        assert daemon.get("/healthz")[0] == 200
    finally:
        daemon.stop(signal.SIGKILL)
    assert daemon.ledger().incidents() == []
