"""Low traffic: a firing error alert is evidence with its own window, and a sample too small to
judge is looked at again at a stated time, never silence. Through a real daemon process and a
real loopback app serving 10 requests a second, 40% of them failing.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.agent.daemon_harness import TOKEN, alert_payload, now_iso, start_daemon, wait_until
from tests.conftest import git_commit
from tests.loopback import LoopbackServer


def slow_app(loopback: LoopbackServer) -> str:
    """10 requests a second since it started, 4 in 10 failing: counters that grow with time."""
    began = time.monotonic()

    def body() -> str:
        served = 10 * (time.monotonic() - began) + 10_000
        return f"http_requests_total {served:.0f}\nhttp_requests_errors_total {0.4 * served:.0f}\n"

    return loopback.route("/metrics", body=body)


def config(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> Path:
    git_commit(deploy_repo, "checkout v1.8", datetime.now(UTC) - timedelta(minutes=4))
    (tmp_path / "token").write_text(TOKEN)
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"path": "ledger.db"}, "sweeps": False,
        "intake": {"token": {"file": str(tmp_path / "token")}},
        "targets": [{"name": "checkout", "deployment": "checkout", "probes": ["git-deploys", "app-metrics"],
                     "deploy_repo": {"path": str(deploy_repo)},
                     "thresholds": {"look_again_s": 1},
                     "metrics": {"url": slow_app(loopback), "scrape_interval_s": 0.25, "max_window_s": 2}}]}))
    return path


def latency_alert() -> dict[str, Any]:
    payload = alert_payload(starts_at=now_iso())
    for where in (payload["commonLabels"], payload["alerts"][0]["labels"]):
        where["alertname"] = "HighLatency"
    for where in (payload["commonAnnotations"], payload["alerts"][0]["annotations"]):
        where["summary"] = "checkout p99 above 1s"
    return payload


def test_a_firing_error_alert_at_10_requests_a_second_gets_a_rollback_proposed(
        tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> None:
    daemon = start_daemon(config(tmp_path, loopback, deploy_repo))
    try:
        daemon.post(alert_payload(starts_at=now_iso()), TOKEN)  # HighErrorRate
        proposals = wait_until(lambda: daemon.ledger().proposals())
    finally:
        daemon.stop(signal.SIGKILL)
    assert [p.proposal.action for p in proposals] == ["rollback"]
    [spike] = [e for e in daemon.ledger().events(types=("finding",)) if e.data["kind"] == "error_spike"]
    assert "alert HighErrorRate is firing" in spike.data["summary"]
    assert "judged by Prometheus over its own window" in spike.data["summary"]


def test_too_few_requests_and_no_error_alert_is_looked_at_again_at_a_stated_time(
        tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> None:
    daemon = start_daemon(config(tmp_path, loopback, deploy_repo))
    try:
        daemon.post(latency_alert(), TOKEN)
        ledger = daemon.ledger()
        scheduled = wait_until(lambda: ledger.events(types=("diagnosis_scheduled",)))
        triaged = wait_until(lambda: len(ledger.events(types=("triaged",))) >= 2 and  # it did look again
                             ledger.events(types=("triaged",)))
    finally:
        daemon.stop(signal.SIGKILL)
    first = scheduled[0]
    at = datetime.fromisoformat(first.data["at"])
    assert re.match(r"checkout: need more data: \d+% of requests failing \(\d+ errors / 2\d requests in 2s\): "
                    r"too few requests to judge \(n=2\d, needs 100\)", first.data["reason"])
    assert first.data["reason"].endswith(f"; looking again at {at:%H:%M}Z")
    assert triaged[1].at >= at
