"""`hemostat ledger prune` and `ledger verify-archive` through the CLI on a SQLite ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from agent.cli.main import cli
from agent.ledger import IncidentRecord
from agent.ledger.sqlite import SqliteLedger


def _ledger_with_an_old_incident(tmp_path: Path) -> Path:
    config = tmp_path / "hemostat.yaml"
    config.write_text("store: {path: ledger.db}\n")
    ledger = SqliteLedger(tmp_path / "ledger.db")
    long_ago = datetime.now(UTC) - timedelta(days=200)
    ledger.open_incident(IncidentRecord("inc-old", "checkout", "errors", "opened", 2, long_ago, long_ago), "hemostat")
    ledger.set_incident_status("inc-old", "resolved", "dana", long_ago + timedelta(hours=1))
    ledger.open_incident(IncidentRecord("inc-new", "billing", "slow", "opened", 3, datetime.now(UTC),
                                        datetime.now(UTC)), "hemostat")
    ledger.close()
    return config


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "ledger", *args])
    return result.exit_code, result.output


def test_prune_moves_old_resolved_incidents_to_an_archive_that_verifies(tmp_path: Path) -> None:
    config, archive = _ledger_with_an_old_incident(tmp_path), tmp_path / "2026-archive.jsonl"
    code, out = _run(config, "prune", "--before", "90d", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["events"] == 2 and json.loads(out)["incidents"] == ["inc-old"]
    assert not archive.exists()
    code, out = _run(config, "prune", "--before", "90d", "--archive", str(archive))
    assert code == 0 and f"archived to {archive}: 2 events through event 2 (1 incident whole)" in out
    assert "kept from event 3: event 3 (incident_opened) is not older than the cutoff" in out
    assert _run(config, "verify")[0] == 0
    code, out = _run(config, "verify-archive", str(archive))
    assert code == 0 and out.startswith("archive ok: 2 events chained; it ends at 2:")
    assert [i.id for i in SqliteLedger(tmp_path / "ledger.db").incidents()] == ["inc-new"]


def test_prune_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    config, archive = _ledger_with_an_old_incident(tmp_path), tmp_path / "a.jsonl"
    code, out = _run(config, "prune", "--before", "last spring", "--archive", str(archive))
    assert code == 2 and "neither an age like 90d nor an ISO date" in out
    code, out = _run(config, "prune", "--before", "90d")
    assert code == 2 and "give --archive FILE (or --dry-run)" in out
    archive.write_text("earlier archive\n")
    code, out = _run(config, "prune", "--before", "2026-01-01", "--archive", str(archive))
    assert code == 2 and "never overwritten" in out
    assert archive.read_text() == "earlier archive\n"
