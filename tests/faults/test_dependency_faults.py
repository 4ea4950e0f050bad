"""Fault suite: dependencies that hang, reset connections or answer garbage, and a ledger
whose disk is full. For each: the diagnosis completes with the gap named; nothing is lost."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.diagnosis.registry import Registry
from agent.diagnosis.service import diagnose
from agent.diagnosis.wiring import build_app
from agent.ledger import LedgerError
from agent.ledger.sqlite import SqliteLedger
from agent.model import DependencySpec, MetricsSpec, TargetSpec
from agent.model.config import Config
from tests.loopback import LoopbackServer

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _app(target: TargetSpec, timeout_s: float = 0.5):  # type: ignore[no-untyped-def]
    return build_app(Config(targets=[target], probe_timeout_s=timeout_s), Registry.discover())


@pytest.mark.parametrize(("route", "gap"), [
    ({"delay_s": 30}, "no answer within 0.3s"),
    ({"reset": True}, "metrics endpoint unreachable"),
    ({"body": "\x00\x01garbage{{{ not prometheus"}, "not Prometheus text format"),
    ({"status": 502}, "metrics endpoint answered HTTP 502"),
])
def test_metrics_fault_leaves_a_named_gap_and_the_rest_completes(loopback: LoopbackServer, route: dict,  # type: ignore[type-arg]
                                                                   gap: str) -> None:
    metrics = loopback.route("/metrics", **route)
    health = loopback.route("/health", status=503)
    target = TargetSpec(name="checkout", metrics=MetricsSpec(url=metrics, timeout_s=0.3, scrape_interval_s=0.01),  # type: ignore[arg-type]
                        dependencies=[DependencySpec(name="stripe", url=health)])  # type: ignore[arg-type]
    result = asyncio.run(diagnose(_app(target), target, NOW))
    failed = {o.probe: o for o in result.observations if not o.ok}
    assert set(failed) == {"app-metrics"} and gap in (failed["app-metrics"].error or "")
    kinds = {f.kind for f in result.findings}
    assert {"probe_failed", "dependency_down"} <= kinds  # the other probe still reported
    assert any(gap in g for g in result.triage.gaps)


def test_a_probe_hanging_past_the_runner_timeout_is_cut_off(loopback: LoopbackServer) -> None:
    metrics = loopback.route("/metrics", delay_s=30)
    target = TargetSpec(name="checkout", metrics=MetricsSpec(url=metrics, timeout_s=30, scrape_interval_s=0.01))  # type: ignore[arg-type]
    result = asyncio.run(diagnose(_app(target, timeout_s=0.4), target, NOW))
    [obs] = result.observations
    assert obs.error == "timed out after 0.4s" and obs.duration_s < 5


def test_full_disk_fails_the_write_whole_and_the_ledger_stays_consistent(tmp_path: Path) -> None:
    """SQLite's max_page_count makes it answer exactly as on a full disk (SQLITE_FULL)."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    before = len(ledger.events())
    ledger._conn.execute("PRAGMA max_page_count = " + str(
        ledger._conn.execute("PRAGMA page_count").fetchone()[0]))
    with pytest.raises(LedgerError, match="database or disk is full") as err:
        for i in range(10_000):
            ledger.append("note", "x", NOW, data={"blob": "y" * 4000, "i": i})
    assert err.value.code in ("ledger_write_failed", "ledger_unavailable")
    written = ledger.events()
    assert [e.data["i"] for e in written[before:]] == list(range(len(written) - before))  # no torn write
    reopened = SqliteLedger(tmp_path / "ledger.db")
    assert len(reopened.events()) == len(written)
    assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert isinstance(ledger._conn, sqlite3.Connection)
