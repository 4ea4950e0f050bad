"""What a new on-call engineer meets first: start-up that fails fast and says which file, global
options where the README puts them, ids that do not exist, no-op commands that record nothing,
and alerts nobody claimed listed instead of lost."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import yaml
from click.testing import CliRunner

from agent.cli.base import hoist_globals
from agent.cli.main import cli
from tests.agent.daemon_harness import HEMOSTAT, TOKEN, alert_payload, daemon_config, now_iso, start_daemon
from tests.loopback import LoopbackServer


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _daemon(config: Path, port: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEMOSTAT, "--config", str(config), "run", "--listen", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=60)


def test_a_missing_config_file_exits_2_naming_it_and_writes_no_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "hemostat.yml"  # a typo for hemostat.yaml
    code, out = _run("--config", str(missing), "proposals")
    assert code == 2 and f"{missing}: no such config file" in out
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_empty_token_file_stops_start_up_naming_it(tmp_path: Path, loopback: LoopbackServer,
                                                                deploy_repo: Path) -> None:
    config = daemon_config(tmp_path, loopback, deploy_repo)
    (tmp_path / "token").write_text("\n")
    done = _daemon(config)
    assert done.returncode == 2 and "intake.token" in done.stderr and "is empty" in done.stderr
    (tmp_path / "token").unlink()
    done = _daemon(config)
    assert done.returncode == 2 and str(tmp_path / "token") in done.stderr and "cannot be read" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_is_one_clear_line(tmp_path: Path, loopback: LoopbackServer, deploy_repo: Path) -> None:
    config = daemon_config(tmp_path, loopback, deploy_repo)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _daemon(config, port)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_global_options_work_after_the_subcommand_too() -> None:
    assert hoist_globals(["approve", "p-1", "--user", "you"]) == ["--user", "you", "approve", "p-1"]
    assert hoist_globals(["--config=a.yaml", "show", "x", "--json"]) == ["--config=a.yaml", "show", "x", "--json"]
    assert hoist_globals(["show", "--help"]) == ["show", "--help"]


def test_demo_into_an_existing_folder_is_a_clear_refusal(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    code, out = _run("demo", "--dir", str(tmp_path))
    assert code == 2 and "already exists and is not empty" in out


def test_unmatched_alerts_are_listed_and_states_are_in_metrics(tmp_path: Path, loopback: LoopbackServer,
                                                               deploy_repo: Path) -> None:
    config = daemon_config(tmp_path, loopback, deploy_repo)
    daemon = start_daemon(config)
    try:
        assert daemon.post(alert_payload(target="billing", starts_at=now_iso()), TOKEN)[0] == 202
        daemon.post(alert_payload(starts_at=now_iso()), TOKEN)
        metrics = daemon.get("/metrics")[1]
    finally:
        daemon.stop(signal.SIGTERM)
    code, out = _run("--config", str(config), "incidents", "--unmatched", "--json")
    [alert] = json.loads(out)
    assert code == 0 and alert["labels"]["hemostat_target"] == "billing"
    assert "HighErrorRate" in _run("--config", str(config), "incidents", "--unmatched")[1]
    assert 'hemostat_incidents{status=' in metrics and "hemostat_proposals" in metrics


def test_ack_resolve_and_assign_record_no_empty_status_changes(tmp_path: Path, loopback: LoopbackServer,
                                                                deploy_repo: Path) -> None:
    config = daemon_config(tmp_path, loopback, deploy_repo, roles={"incident_commander": "dana"})
    doc = yaml.safe_load(config.read_text())
    doc["targets"][0]["probes"] = ["app-metrics"]
    config.write_text(yaml.safe_dump(doc))
    assert _run("--config", str(config), "--user", "sam", "diagnose", "checkout")[0] == 3
    [incident] = json.loads(_run("--config", str(config), "incidents", "--json")[1])
    for args in (["ack", incident["id"]], ["assign", incident["id"], "incident_commander", "lee"],
                 ["resolve", incident["id"]], ["resolve", incident["id"]]):
        assert _run("--config", str(config), "--user", "sam", *args)[0] == 0
    shown = json.loads(_run("--config", str(config), "show", incident["id"], "--json")[1])
    changes = [e["data"] for e in shown["events"] if e["type"] == "status_changed"]
    assert all(c["from"] != c["to"] for c in changes)
    assert [c["to"] for c in changes].count("resolved") == 1
    text = _run("--config", str(config), "postmortem", incident["id"])[1]
    assert "- **Incident commander:** lee" in text  # the assignment beats hemostat.yaml's roles
