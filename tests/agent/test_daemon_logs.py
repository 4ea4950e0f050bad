"""The daemon says what it does: every alert received, incident opened, probe started and failed
(with the reason), decision (branch and verdict), approval, execution step and verification is a
structured line carrying the incident and proposal ids; `--log-format json` makes each a JSON
object. Read from a real daemon's stderr, and (for the execution path, which needs an approval)
captured in-process around the real CLI on the demo's git-deployed app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from structlog.testing import capture_logs

from agent.cli.demo_app import serve
from agent.cli.demo_scene import make_deploy_repo, write_config
from agent.cli.main import cli
from agent.model import quietlog
from tests.agent.daemon_harness import HEMOSTAT, TOKEN, alert_payload, daemon_config, now_iso, wait_until
from tests.loopback import LoopbackServer
from tests.services import free_port


@pytest.fixture
def logging_on() -> Iterator[None]:
    """This process logs, as the daemon does (agent.logs.configure turns it on)."""
    quietlog.enable()
    yield
    quietlog.enable(False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_daemon_logs_alert_incident_probes_and_decision_as_json(tmp_path: Path, loopback: LoopbackServer,
                                                                   deploy_repo: Path) -> None:
    config = daemon_config(tmp_path, loopback, deploy_repo)
    spec = yaml.safe_load(config.read_text())
    spec["targets"][0]["probes"].append("http-health")
    spec["targets"][0]["dependencies"] = [{"name": "ledger-api", "url": "http://127.0.0.1:1/health", "timeout_s": 2}]
    config.write_text(json.dumps(spec))
    port, log = free_port(), tmp_path / "daemon.log"
    with log.open("ab") as stderr:
        proc = subprocess.Popen([HEMOSTAT, "--config", str(config), "run", "--listen", f"127.0.0.1:{port}",
                                 "--log-format", "json", "--log-level", "debug"],
                                stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "NO_COLOR": "1"})
    try:
        from tests.agent.daemon_harness import DaemonProcess

        daemon = DaemonProcess(config, port, proc, log)
        wait_until(lambda: _ready(daemon))
        assert daemon.post(alert_payload(starts_at=now_iso()), TOKEN)[0] == 202
        wait_until(lambda: any(e.get("event") == "proposal" for e in _lines(log)), timeout_s=30)
        second = alert_payload(starts_at=now_iso(), fingerprint="d4e5f6", alertname="HighLatency")
        assert daemon.post(second, TOKEN)[0] == 202
        wait_until(lambda: any(e.get("event") == "incident joined" for e in _lines(log)), timeout_s=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = _lines(log)  # every line is JSON: a bad one fails json.loads above
    by = {e["event"]: e for e in lines}
    received = next(e for e in lines if e["event"] == "webhook received")
    assert received["alerts"] == 1 and received["recorded"] == 1 and received["incident_ids"]
    incident = received["incident_ids"][0]
    assert by["incident_opened"]["incident_id"] == incident
    fired = [e for e in lines if e["event"] == "alert_fired"]
    assert [(e["incident_id"], e["alertnames"]) for e in fired] == [(incident, ["HighErrorRate"]),
                                                                    (incident, ["HighLatency"])]
    started = {e["probe"] for e in lines if e["event"] == "probe started"}
    assert {"git-deploys", "app-metrics", "http-health"} <= started
    proposal = by["proposal"]
    assert proposal["incident_id"] == incident and proposal["proposal_id"].startswith("p-")
    assert proposal["branch"] == "recent deployment" and proposal["verdict"] == "needs_approval"
    joined = by["incident joined"]
    assert joined["incident_id"] == incident and joined["firing"] == 1
    assert all({"level", "timestamp"} <= e.keys() for e in lines)


def test_a_failing_probe_is_logged_with_its_reason(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path,
                                                   logging_on: None) -> None:
    from agent.diagnosis.runner import collect_all
    from agent.diagnosis.wiring import build_app
    from agent.model.config import load_config
    from agent.model.context import ProbeContext

    config = daemon_config(tmp_path, loopback, deploy_repo, metrics_url="http://127.0.0.1:1/metrics")
    app = build_app(load_config(config))
    import asyncio

    with capture_logs() as logs:
        asyncio.run(collect_all(app.config.targets[0], app.registry,
                                ProbeContext(breakers=app.breakers, timeout_s=5), ["app-metrics"]))
    [failed] = [e for e in logs if e["event"] == "probe failed"]
    assert failed["probe"] == "app-metrics" and failed["target"] == "checkout"
    assert "unreachable" in failed["reason"] and failed["log_level"] == "warning"


def _ready(daemon: Any) -> bool:
    try:
        return bool(daemon.get("/readyz")[0] == 200)
    except OSError:
        return False


def test_approval_execution_and_verification_are_logged_with_their_ids(tmp_path: Path, logging_on: None) -> None:
    repo = tmp_path / "deploys"
    make_deploy_repo(repo, datetime.now(UTC))
    server = serve(repo)
    try:
        config = write_config(tmp_path, f"http://127.0.0.1:{server.server_port}")
        run = CliRunner()
        with capture_logs() as logs:
            out = run.invoke(cli, ["--config", str(config), "--user", "dana", "diagnose", "checkout", "--json"])
            assert out.exit_code == 3, out.output
            pid = json.loads(out.stdout)["proposals"][0]["id"]
            assert run.invoke(cli, ["--config", str(config), "--user", "sam", "approve", pid]).exit_code == 0
            done = run.invoke(cli, ["--config", str(config), "--user", "sam", "execute", pid])
            assert done.exit_code == 0, done.output
    finally:
        server.shutdown()
        server.server_close()
    mine = [e for e in logs if e.get("proposal_id") == pid]
    events = [e["event"] for e in mine]
    for step in ("proposal", "approval", "proposal_approved", "execution_started", "execution_finished",
                 "verification", "proposal_succeeded"):
        assert step in events, events
    approval = next(e for e in mine if e["event"] == "approval")
    assert approval["actor"] == "sam" and approval["incident_id"].startswith("inc-")
    verification = next(e for e in mine if e["event"] == "verification")
    assert verification["ok"] is True and "no longer report an error spike" in verification["detail"]
    moved = [e for e in logs if e["event"] == "status_changed" and e.get("to") == "monitoring"]
    assert moved and moved[0]["cause"] == "mitigation_verified"


def test_a_one_shot_command_prints_no_log_lines_even_with_structlog_configured(
        tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> None:
    config = daemon_config(tmp_path, loopback, deploy_repo, metrics_url="http://127.0.0.1:1/metrics")
    with capture_logs():
        pass  # leaves structlog configured, printing to stdout, as an earlier caller may
    out = CliRunner().invoke(cli, ["--config", str(config), "diagnose", "checkout", "--json", "--no-ledger"])
    assert out.exit_code == 4, out.output
    assert json.loads(out.stdout)["complete"] is False  # one document: no "probe failed" line before it
