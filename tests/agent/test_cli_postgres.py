"""`hemostat approve` from another machine: the CLI against the cluster's PostgreSQL ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from agent.ledger.postgres import PostgresLedger
from agent.model import DecisionStep, Proposal, Verdict
from policies.model import bundled_policy_path

NOW = datetime.now(UTC)


def test_approve_from_another_process_against_the_postgres_ledger(pg_db: str, tmp_path: Path) -> None:
    config = tmp_path / "hemostat.yaml"
    config.write_text("store: {backend: postgres, dsn: {env: HEMOSTAT_TEST_LEDGER_DSN}}\n"
                      f"policy: {bundled_policy_path('demo')}\n")  # trusts the --user name
    daemon_side = PostgresLedger(pg_db)
    proposal = Proposal(id="p-pg0001", target="checkout", action="rollback", subject="checkout", params={},
                        path=(DecisionStep("recent deployment", "deploy 4 min ago"),), reason="rollback",
                        created_at=NOW)
    daemon_side.add_proposal(proposal, Verdict("needs_approval", "propose", ("needs 1",), 1), NOW, None)
    env = {**os.environ, "HEMOSTAT_TEST_LEDGER_DSN": pg_db, "HEMOSTAT_CONFIG": str(config),
           "HEMOSTAT_USER": "oncall-alice"}
    exe = str(Path(sys.executable).parent / "hemostat")
    listed = subprocess.run([exe, "proposals"], env=env, capture_output=True, text=True, check=True)
    assert "p-pg0001  proposed  rollback" in listed.stdout
    approved = subprocess.run([exe, "approve", "p-pg0"], env=env, capture_output=True, text=True)
    assert approved.returncode == 0, approved.stderr
    assert "approved by oncall-alice (1/1); now approved" in approved.stdout
    record = daemon_side.proposal("p-pg0001")
    assert record.state == "approved" and record.approvers == ("oncall-alice",)
    password = pg_db.split("password=")[1].split()[0] if "password=" in pg_db else ""
    assert not password or password not in listed.stdout + approved.stdout + approved.stderr
    daemon_side.close()
