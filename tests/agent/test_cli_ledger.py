"""`hemostat ledger verify` through the real CLI: a clean ledger verifies; after its owner tampers
with it (SQLite file, PostgreSQL owner role) it exits 1 naming the first broken link."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from click.testing import CliRunner

from agent.cli.main import cli
from agent.ledger import Ledger
from agent.ledger.postgres import PostgresLedger
from agent.ledger.sqlite import SqliteLedger

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _timeline(ledger: Ledger) -> list[int]:
    return [ledger.append(kind, who, T0 + timedelta(minutes=i), incident_id="inc-1",
                          data={"step": i}).seq
            for i, (kind, who) in enumerate([("incident_opened", "hemostat"), ("triaged", "hemostat"),
                                             ("approval", "alice"), ("execution_started", "hemostat")])]


def _sqlite_config(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "hemostat.yaml"
    config.write_text("store: {path: ledger.db}\n")
    return config, tmp_path / "ledger.db"


def test_a_clean_ledger_verifies(tmp_path: Path) -> None:
    config, db = _sqlite_config(tmp_path)
    ledger = SqliteLedger(db)
    seqs = _timeline(ledger)
    ledger.close()
    result = CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert f"ledger ok: 4 events chained; head {seqs[-1]}:" in result.output


def test_a_head_written_down_earlier_catches_events_cut_from_the_end(tmp_path: Path) -> None:
    config, db = _sqlite_config(tmp_path)
    ledger = SqliteLedger(db)
    seqs = _timeline(ledger)
    head = ledger.verify_chain().head_hash
    ledger.close()
    verify = ["--config", str(config), "ledger", "verify", "--expect", f"{seqs[-1]}:{head}"]
    assert CliRunner().invoke(cli, verify).exit_code == 0
    conn = sqlite3.connect(db, isolation_level=None)  # the chain alone cannot see a cut end
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq = ?", (seqs[-1],))
    conn.close()
    assert CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify"]).exit_code == 0
    result = CliRunner().invoke(cli, verify)
    assert result.exit_code == 1 and "events were cut from its end" in result.output
    bad = CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify", "--expect", "12:abc"])
    assert bad.exit_code == 2 and "is not SEQ:HASH" in bad.output


def test_a_tampered_sqlite_ledger_names_the_first_broken_link(tmp_path: Path) -> None:
    config, db = _sqlite_config(tmp_path)
    ledger = SqliteLedger(db)
    seqs = _timeline(ledger)
    ledger.close()
    conn = sqlite3.connect(db, isolation_level=None)  # the file's owner drops the guard and edits
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET actor = 'mallory' WHERE seq = ?", (seqs[2],))
    conn.close()
    result = CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["ok"] is False and doc["broken_seq"] == seqs[2] and doc["checked"] == 2
    assert "approval by mallory" in doc["reason"]


def test_a_tampered_postgres_ledger_names_the_first_broken_link(pg_db: str, tmp_path: Path) -> None:
    ledger = PostgresLedger(pg_db)
    seqs = _timeline(ledger)
    ledger.close()
    with psycopg.connect(pg_db, autocommit=True) as owner:  # the owner can lift its own triggers
        owner.execute("ALTER TABLE events DISABLE TRIGGER events_no_change")
        owner.execute("DELETE FROM events WHERE seq = %s", (seqs[1],))
        owner.execute("ALTER TABLE events ENABLE TRIGGER events_no_change")
    config = tmp_path / "hemostat.yaml"
    config.write_text("store: {backend: postgres, dsn: {env: HEMOSTAT_TEST_LEDGER_DSN}}\n")
    env = {**os.environ, "HEMOSTAT_TEST_LEDGER_DSN": pg_db, "HEMOSTAT_CONFIG": str(config)}
    exe = str(Path(sys.executable).parent / "hemostat")
    done = subprocess.run([exe, "ledger", "verify"], env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"ledger broken: event {seqs[2]} (approval by alice" in done.stderr
    assert f"the 1 events before event {seqs[2]} verify" in done.stderr


def test_expect_takes_the_short_head_the_docs_show(tmp_path: Path) -> None:
    config, db = _sqlite_config(tmp_path)
    ledger = SqliteLedger(db)
    seqs = _timeline(ledger)
    head = ledger.verify_chain().head_hash
    ledger.close()
    assert head is not None
    for written in (f"{seqs[-1]}:{head[:8]}", f"{seqs[-1]}:{head[:12]}…", f"{seqs[-1]}:{head.upper()[:10]}"):
        result = CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify", "--expect", written])
        assert result.exit_code == 0, (written, result.output)
    wrong = f"{seqs[-1]}:{'0' if head[0] != '0' else '1'}{head[1:8]}"
    result = CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify", "--expect", wrong])
    assert result.exit_code == 1 and "the ledger up to it was rewritten" in result.output
    short = CliRunner().invoke(cli, ["--config", str(config), "ledger", "verify", "--expect", f"{seqs[-1]}:{head[:7]}"])
    assert short.exit_code == 2 and "8+ hex digits" in short.output
