"""Issue 23, H3: forging approvals with nothing but the daemon's runtime PostgreSQL role, tried for
real on a ledger migrated by its owner with split roles (docs/install.md). Each forgery once
executed (or stopped every append) and passed `ledger verify`; now it neither executes nor
verifies, and the report names the forged row or event."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.types.json import Jsonb

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.execution.executor import Executor
from agent.ledger import LedgerError
from agent.ledger.binding import content_hash
from agent.ledger.postgres import PostgresLedger
from agent.model import DecisionStep, Proposal, TargetSpec, Verdict
from agent.model.config import Config, StoreConfig
from agent.model.identity import Identity
from agent.model.secrets import SecretRef
from tests.ledger.conftest import Roles, split  # noqa: F401  (the split-roles database fixture)
from tests.plugins.slow_marker import SlowMarker

POLICY = {"mode": "propose", "approvers": {"sources": ["kubernetes"]},
          "actions": {"slow-marker": {"approvals": 2, "cooldown_minutes": 0,  # each test runs one
                                      "revert": {"approvals": 2}}}}
SEAL_KEY = "seal-key-the-database-never-sees"


def _sre(name: str) -> Identity:
    return Identity("kubernetes", name, name, ("sre",))


@dataclass
class Runtime:
    """The daemon as it runs: the runtime role's ledger and an executor with the seal key."""

    ledger: PostgresLedger
    executor: Executor
    dsn: str
    tmp: Path

    def propose(self, subject: str = "payments") -> tuple[str, Path]:
        pid, marker = f"p-{secrets.token_hex(4)}", self.tmp / f"marker-{secrets.token_hex(3)}"
        now = datetime.now(UTC)
        self.ledger.add_proposal(
            Proposal(id=pid, target="checkout", action="slow-marker", subject=subject,
                     params={"file": str(marker)}, path=(DecisionStep("e", "errors"),), reason="mark",
                     created_at=now),
            Verdict("needs_approval", "propose", ("human",), 2), now, now + timedelta(hours=1))
        return pid, marker

    def approve(self, pid: str, who: str) -> None:  # as the approval API does: sealed
        self.ledger.approve(pid, _sre(who), datetime.now(UTC), seal_key=SEAL_KEY.encode())

    def run(self) -> list[str]:
        return asyncio.run(self.executor.run_once())

    def sql(self, query: str, *params: Any) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:  # the runtime role's own DSN
            conn.execute(query, params)


@pytest.fixture
def runtime(split: Roles, tmp_path: Path) -> Iterator[Runtime]:  # noqa: F811
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    (tmp_path / "tree.yaml").write_text(yaml.safe_dump({"branches": [
        {"name": "e", "title": "e", "any": ["error_spike"], "propose": [{"action": "slow-marker"}]}]}))
    (tmp_path / "seal").write_text(SEAL_KEY)
    registry = Registry()
    registry.add_action(SlowMarker())
    config = Config(targets=[TargetSpec(name="checkout")], tree=tmp_path / "tree.yaml",
                    policy=tmp_path / "policy.yaml",
                    store=StoreConfig(backend="postgres", dsn=SecretRef(env="UNUSED"),
                                      seal_key=SecretRef(file=tmp_path / "seal")))
    ledger = PostgresLedger(split.daemon_dsn)
    yield Runtime(ledger, Executor(build_app(config, registry), ledger, "hemostat"), split.daemon_dsn, tmp_path)
    ledger.close()


def _forge_approvals(runtime: Runtime, pid: str, *, events: bool) -> None:
    """The issue's forgery: two approvers' rows (source kubernetes), their events, the state."""
    record = runtime.ledger.proposal(pid)
    for n, who in enumerate(("bob", "carol"), start=1):
        identity = _sre(who).to_json()
        runtime.sql("INSERT INTO approvals (proposal_id, actor, at, source, subject, display_name, groups, uid) "
                    "VALUES (%s, %s, now(), 'kubernetes', %s, %s, '[\"sre\"]', '')", pid, who, who, who)
        if events:
            runtime.sql("INSERT INTO events (at, type, actor, proposal_id, data) VALUES (now(), 'approval', %s, %s, %s)",
                        who, pid, Jsonb({"approvals": n, "needed": 2, "identity": identity,
                                         "content": content_hash(record.proposal.to_json()), "seal": "0" * 64}))
    runtime.sql("UPDATE proposals SET state = 'approved', updated_at = now() WHERE id = %s", pid)


def test_sealed_approvals_still_execute(runtime: Runtime) -> None:
    pid, marker = runtime.propose()
    runtime.approve(pid, "alice")
    runtime.approve(pid, "bob")
    assert runtime.run() == [pid]
    assert marker.read_text().split() == ["start", "done"]
    assert runtime.ledger.verify_chain(seal_key=SEAL_KEY.encode()).ok


def test_forged_approval_rows_and_state_neither_execute_nor_verify(runtime: Runtime) -> None:
    pid, marker = runtime.propose()
    _forge_approvals(runtime, pid, events=False)
    checked = runtime.ledger.verify_chain()
    assert not checked.ok
    assert f"proposals row {pid}: state 'approved', but its events say 'proposed'" in str(checked.reason)
    assert f"approvals row ({pid}, kubernetes:bob): no approval event records it" in str(checked.reason)
    assert pid not in runtime.run() and not marker.exists()
    assert runtime.ledger.proposal(pid).state == "rejected"
    assert "tampering" in [e.type for e in runtime.ledger.events(proposal_id=pid)]


def test_forged_approval_events_are_unsealed_so_nothing_runs_and_verify_names_them(runtime: Runtime) -> None:
    runtime.approve(runtime.propose()[0], "alice")  # the daemon seals what it records
    pid, marker = runtime.propose()
    _forge_approvals(runtime, pid, events=True)
    assert pid not in runtime.run() and not marker.exists()
    assert runtime.ledger.proposal(pid).state == "rejected"
    checked = runtime.ledger.verify_chain(seal_key=SEAL_KEY.encode())  # as `hemostat ledger verify`
    assert not checked.ok and f"an approval of {pid} without the daemon's seal" in str(checked.reason)


def test_an_approval_does_not_carry_over_to_edited_content(runtime: Runtime) -> None:
    """An approval of "slow-marker payments" once executed on "ledgerco" after the runtime role
    edited the proposal's subject (here also its params: what it writes)."""
    pid, marker = runtime.propose("payments")
    runtime.approve(pid, "alice")
    elsewhere = runtime.tmp / "elsewhere"
    runtime.sql("UPDATE proposals SET proposal = jsonb_set(jsonb_set(proposal, '{subject}', '\"ledgerco\"'), "
                "'{params,file}', to_jsonb(%s::text)) WHERE id = %s", str(elsewhere), pid)
    runtime.approve(pid, "bob")  # bob saw (and approved) the edited one
    assert runtime.ledger.proposal(pid).state == "approved"
    assert pid not in runtime.run()
    assert not marker.exists() and not elsewhere.exists()
    tamper = [e for e in runtime.ledger.events(proposal_id=pid) if e.type == "tampering"]
    assert tamper and "differ from what the chain recorded" in tamper[0].data["reason"]
    checked = runtime.ledger.verify_chain()
    assert not checked.ok
    assert f"proposals row {pid}: its target, action, subject or params differ" in str(checked.reason)


def test_the_runtime_role_cannot_choose_a_seq_nor_write_a_login_s_approval(runtime: Runtime) -> None:
    """`INSERT INTO events ... OVERRIDING SYSTEM VALUE` with seq 1000000 once made every later
    append fail (all webhooks 503) while verify said ok."""
    with pytest.raises(psycopg.errors.RaiseException, match="not drawn from the ledger's sequence"):
        runtime.sql("INSERT INTO events (seq, at, type, actor, data) OVERRIDING SYSTEM VALUE "
                    "VALUES (1000000, now(), 'note', 'x', '{}')")
    with pytest.raises(psycopg.errors.RaiseException, match="only hemostat_approve"):
        runtime.sql("INSERT INTO events (at, type, actor, data) VALUES (now(), 'approval', 'dba', %s)",
                    Jsonb({"identity": {"source": "postgres", "subject": "dba", "name": "dba"}}))
    appended = runtime.ledger.append("note", "hemostat", datetime.now(UTC), data={"text": "still appends"})
    checked = runtime.ledger.verify_chain()  # (the module's earlier forgeries are still reported)
    assert appended.seq < 1000000 and checked.broken_seq is None and checked.head_seq == appended.seq
    with pytest.raises(LedgerError):
        runtime.ledger.proposal("p-", exact=True)


def test_a_leader_lock_held_idle_shows_in_readyz_and_metrics(tmp_path: Path, pg_db: str) -> None:
    """M4: any role that may call pg_try_advisory_lock stopped every execution by holding the
    leader lock, and /readyz stayed 200. Now the daemon says so, and the heartbeat's age shows."""
    import signal
    import subprocess

    from agent.ledger.postgres import LEADER_KEY
    from tests.agent.daemon_harness import HEMOSTAT, DaemonProcess, wait_until
    from tests.services import free_port

    seeded = PostgresLedger(pg_db)  # migrated; the last executor beat an hour ago
    seeded.beat("executor", "old-daemon", datetime.now(UTC) - timedelta(hours=1))
    seeded.close()
    (tmp_path / "token").write_text("webhook-token")
    config = tmp_path / "hemostat.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"backend": "postgres", "dsn": {"env": "HEMOSTAT_LEDGER_DSN"}}, "sweeps": False,
        "intake": {"token": {"file": str(tmp_path / "token")}},
        "targets": [{"name": "checkout", "probes": []}]}))
    holder = psycopg.connect(pg_db, autocommit=True)  # an approver's session, say
    holder.execute("SELECT pg_advisory_lock(%s)", (LEADER_KEY,))
    port = free_port()
    with (tmp_path / "daemon.log").open("ab") as log:
        proc = subprocess.Popen([HEMOSTAT, "--config", str(config), "run", "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=log,
                                env={**os.environ, "HEMOSTAT_LEDGER_DSN": pg_db})
    daemon = DaemonProcess(config, port, proc, tmp_path / "daemon.log")
    try:
        def ready() -> tuple[int, str]:
            try:
                return daemon.get("/readyz")
            except OSError:
                return 0, ""
        held = wait_until(lambda: (r := ready())[0] == 503 and "leader lock is held" in r[1] and r)
        age = wait_until(lambda: re.search(r"^hemostat_executor_heartbeat_age_seconds (\S+)$",
                                           daemon.get("/metrics")[1], re.M))
        holder.close()  # the lock is free again: this daemon leads, beats, and is ready
        wait_until(lambda: ready()[0] == 200)
    finally:
        holder.close()
        daemon.stop(signal.SIGKILL)
    print(f"\nidle leader lock: /readyz {held}; heartbeat age {float(age.group(1)):.0f} s")
    assert float(age.group(1)) > 3000


def test_a_replica_whose_clock_runs_ahead_does_not_settle_another_s_execution_early(runtime: Runtime) -> None:
    """M2: replica B, its clock 60 s ahead, reconciled A's execution 3 s after taking over,
    recorded "not in place" and failed it while A's action was still running. Claims now carry
    the database's time, and B measures their leases against it."""
    import dataclasses

    from tests.agent.daemon_harness import wait_until

    pid, marker = runtime.propose()
    runtime.approve(pid, "alice")
    runtime.approve(pid, "bob")
    record = runtime.ledger.proposal(pid)
    plan = asyncio.run(SlowMarker().plan(record.proposal, runtime.executor.context(record)))
    assert runtime.ledger.claim_execution(pid, "replica-a", datetime.now(UTC), plan.to_json()) is not None
    ahead = Executor(runtime.executor.app, runtime.ledger, "replica-b",
                     now=lambda: datetime.now(UTC) + timedelta(seconds=120))
    assert asyncio.run(ahead.reconcile()) == []  # 120 s ahead, yet the 60 s lease is not over
    assert runtime.ledger.proposal(pid).state == "executing"
    marker.write_text("start\ndone\n")  # A's action lands
    config = runtime.executor.app.config
    short = dataclasses.replace(runtime.executor.app, config=config.model_copy(
        update={"executor": config.executor.model_copy(update={"claim_lease_s": 1})}))
    later = Executor(short, runtime.ledger, "replica-b", now=ahead.now)
    wait_until(lambda: asyncio.run(later.reconcile()) == [pid], timeout_s=10, every_s=0.25)
    assert runtime.ledger.proposal(pid).state == "succeeded"  # checked by effect, never re-run
    assert marker.read_text().split() == ["start", "done"]


def test_a_forged_revert_approval_does_not_count(runtime: Runtime) -> None:
    """A revert needing two people: the runtime role adds a second "approver" of the revert
    (row and event); the one real request must still wait for a real second person."""
    pid, marker = runtime.propose()
    runtime.approve(pid, "alice")
    runtime.approve(pid, "bob")
    assert runtime.run() == [pid] and marker.exists()
    runtime.sql("INSERT INTO revert_approvals (proposal_id, actor, at, source, subject, display_name, groups, uid) "
                "VALUES (%s, 'carol', now(), 'kubernetes', 'carol', 'carol', '[\"sre\"]', '')", pid)
    runtime.sql("INSERT INTO events (at, type, actor, proposal_id, data) VALUES (now(), 'revert_approval', "
                "'carol', %s, %s)", pid, Jsonb({"approvals": 1, "identity": _sre("carol").to_json()}))
    outcome = asyncio.run(runtime.executor.revert(pid, "undo", by=_sre("dave")))
    assert outcome.facts.get("pending") and "(1/2)" in outcome.detail
    assert marker.exists() and runtime.ledger.proposal(pid).state == "succeeded"
    outcome = asyncio.run(runtime.executor.revert(pid, "undo", by=_sre("erin")))  # a real second one
    assert outcome.ok and not marker.exists()
