"""The CLI habits people expect: `-o json|yaml|wide` beside `--json`, one document on stdout in a
JSON mode, NO_COLOR and non-TTY honoured, relative ages, titles cut on words, a readable
`policy explain`, `completion`, `diagnose --record x.json`, diagnose's exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from agent.cli.output import age, colour_ok, style
from agent.cli.render import incidents as incidents_table
from agent.ledger import IncidentRecord
from tests.agent.test_cli import incident, run

__all__ = ["incident"]  # the fixture, used by name
HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
DRILLS = Path(__file__).resolve().parents[2] / "drills"


def _sub(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEMOSTAT, "--config", str(config), "--user", "alice", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


@pytest.fixture
def diagnosed(incident: Path) -> tuple[Path, dict[str, object]]:
    done = _sub(incident, "diagnose", "checkout", "--json")
    assert done.returncode == 3, done.stderr  # 3: an incident
    return incident, json.loads(done.stdout)


@pytest.mark.parametrize("args", [("proposals",), ("incidents",), ("plugins",), ("ledger", "verify")])
def test_o_json_equals_json_and_o_yaml_is_the_same_document(diagnosed: tuple[Path, dict[str, object]],
                                                            args: tuple[str, ...]) -> None:
    config, _ = diagnosed
    as_json, o_json, o_yaml = (_sub(config, *args, *flag) for flag in (("--json",), ("-o", "json"),
                                                                     ("-o", "yaml")))
    assert as_json.returncode == o_json.returncode == o_yaml.returncode == 0, as_json.stderr + o_yaml.stderr
    assert json.loads(as_json.stdout) == json.loads(o_json.stdout) == yaml.safe_load(o_yaml.stdout)


def test_drill_json_is_exactly_one_document_on_stdout(tmp_path: Path) -> None:
    done = subprocess.run([HEMOSTAT, "--config", str(tmp_path / "none.yaml"), "drill", "--json",
                           str(DRILLS / "deployment-gone-wrong.yaml")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["passed"] is True  # was followed by "1 passed, 0 failed"
    assert "1 passed, 0 failed" in done.stderr


def test_postmortem_o_json_is_a_document_not_a_file_named_json(diagnosed: tuple[Path, dict[str, object]],
                                                              tmp_path: Path) -> None:
    config, doc = diagnosed
    os.chdir(tmp_path)
    done = _sub(config, "postmortem", str(doc["incident"]), "-o", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["id"] == doc["incident"] and out["markdown"].startswith("# Post-mortem")
    assert not (tmp_path / "json").exists()
    done = _sub(config, "postmortem", str(doc["incident"]), "-o", str(tmp_path / "pm.md"))
    assert done.returncode == 0 and (tmp_path / "pm.md").read_text().startswith("# Post-mortem")


def test_a_pipe_gets_no_escape_codes(incident: Path) -> None:
    done = _sub(incident, "diagnose", "checkout", "--no-ledger")
    assert done.returncode == 3 and done.stdout.startswith("SEV-2 checkout"), done.stderr
    assert "\x1b[" not in done.stdout + done.stderr


class _Tty:
    def isatty(self) -> bool:
        return True


def test_no_color_wins_over_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_ok(_Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_ok(_Tty())
    monkeypatch.setattr(sys, "stdout", _Tty())
    assert style("x", fg="red") == "x"
    monkeypatch.delenv("NO_COLOR")
    assert style("x", fg="red") == click.style("x", fg="red")


def test_times_carry_their_age_and_titles_are_cut_on_words() -> None:
    now = datetime.now(UTC)
    assert age(now - timedelta(minutes=4, seconds=10), now) == "4m ago"
    assert age(now + timedelta(minutes=25), now) == "in 25m"
    assert age(now - timedelta(days=2, hours=3), now) == "2d ago"
    title = "SEV-2 checkout: 40% of requests failing (84 errors / 210 requests in 1s)"
    record = IncidentRecord("inc-1", "checkout", title, "identified", 2, now - timedelta(minutes=4), now)
    table = incidents_table([record])
    assert "(4m ago)" in table
    shown = table.splitlines()[1].split("(4m ago)")[1].strip()
    assert title.startswith(shown.removesuffix(" …")) and shown.endswith(" …")
    assert title[len(shown.removesuffix(" …"))] == " "  # cut at a space, not inside "requests"
    assert title in incidents_table([record], wide=True)


def test_policy_explain_reads_as_words_not_a_python_dict(diagnosed: tuple[Path, dict[str, object]]) -> None:
    config, doc = diagnosed
    pid = str(doc["proposals"][0]["id"])  # type: ignore[index]
    code, out = run(config, "policy", "explain", pid)
    assert code == 0, out
    rule = next(line for line in out.splitlines() if line.strip().startswith("rule"))
    assert "{" not in rule and "'" not in rule and "approvals 1" in rule


def test_every_json_flag_has_help_text() -> None:
    def walk(command: click.Command, path: str) -> list[str]:
        missing = [f"{path} --json" for p in command.params
                   if isinstance(p, click.Option) and "--json" in p.opts and not p.help]
        for name, sub in getattr(command, "commands", {}).items():
            missing += walk(sub, f"{path} {name}")
        return missing

    assert walk(cli, "hemostat") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_that_completes_commands(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0 and "_HEMOSTAT_COMPLETE" in result.output
    done = subprocess.run([HEMOSTAT], env={**os.environ, "_HEMOSTAT_COMPLETE": "bash_complete",
                                           "COMP_WORDS": "hemostat propo", "COMP_CWORD": "1"},
                          capture_output=True, text=True, timeout=60)
    assert "proposals" in done.stdout


def test_diagnose_record_writes_json_for_json(incident: Path, tmp_path: Path) -> None:
    code, out = run(incident, "diagnose", "checkout", "--no-ledger", "--record", str(tmp_path / "x.json"))
    assert code == 3, out
    assert json.loads((tmp_path / "x.json").read_text())["expect"]["severity"] == "SEV-2"  # was YAML
    code, out = run(incident, "drill", str(tmp_path / "x.json"))
    assert code == 0, out


def test_diagnose_exit_code_says_incident_incomplete_or_clear(incident: Path, tmp_path: Path) -> None:
    config = yaml.safe_load(incident.read_text())
    config["targets"][0]["dependencies"][0]["url"] = "http://127.0.0.1:1/health"  # nobody listens
    config["targets"][0]["metrics"]["url"] = "http://127.0.0.1:1/metrics"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    code, out = run(broken, "diagnose", "checkout", "--no-ledger")
    assert code == 4 and re.search(r"incomplete|could not look", out), out


def test_progress_names_the_waiting_probe_on_a_terminal_only(incident: Path, tmp_path: Path) -> None:
    import pty

    config = yaml.safe_load(incident.read_text())
    config["targets"][0]["metrics"]["scrape_interval_s"] = 2.5  # app-metrics waits between scrapes
    slow = tmp_path / "slow.yaml"
    slow.write_text(yaml.safe_dump(config))
    master, slave = pty.openpty()
    try:
        done = subprocess.run([HEMOSTAT, "--config", str(slow), "diagnose", "checkout", "--no-ledger", "--json"],
                              stdout=subprocess.PIPE, stderr=slave, timeout=120, env={**os.environ, "NO_COLOR": "1"})
        os.close(slave)
        terminal = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(master)
    assert done.returncode == 3
    assert "waiting for app-metrics" in terminal.decode()
    json.loads(done.stdout)  # stdout is still the one document
    piped = _sub(slow, "diagnose", "checkout", "--no-ledger")
    assert "waiting for" not in piped.stderr + piped.stdout
