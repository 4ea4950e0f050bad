"""Issue 23 (L1 and H3): the chain's head is published in /metrics, so a SQLite ledger rewritten
with file access (an event edited and every later hash recomputed: `ledger verify` alone passes)
no longer matches the head Prometheus recorded."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from agent.ledger import chain
from agent.ledger.sqlite import SqliteLedger
from agent.server.metrics import Metrics

T0 = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def _published(metrics: Metrics) -> tuple[int, int]:
    text = metrics.exposition()[0].decode()
    seq = re.search(r"^hemostat_ledger_head_seq (\S+)$", text, re.M)
    digest = re.search(r"^hemostat_ledger_head_hash (\S+)$", text, re.M)
    assert seq and digest, text
    return int(float(seq.group(1))), int(float(digest.group(1)))


def _rewrite(path: Path, seq: int, data: str) -> None:
    """What someone with the file can do: change one event and re-chain everything after it."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER events_no_update")
        rows = db.execute("SELECT seq, at, type, actor, incident_id, proposal_id, data FROM events "
                          "ORDER BY seq").fetchall()
        prev = chain.GENESIS
        for r in rows:
            text = data if r[0] == seq else r[6]
            prev = chain.link(prev, r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], text)
            db.execute("UPDATE events SET data = ?, hash = ? WHERE seq = ?", (text, prev, r[0]))


def test_metrics_publish_the_head_and_a_rewritten_ledger_no_longer_matches_it(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    for n in range(3):
        ledger.append("note", "hemostat", T0, data={"text": f"note {n}"})
    metrics = Metrics()
    metrics.watch(ledger)
    published = _published(metrics)
    head = ledger.head()
    assert published == (3, int(head.hash[:13], 16))
    ledger.close()

    _rewrite(tmp_path / "ledger.db", 2, '{"text": "it never happened"}')
    rewritten = SqliteLedger(tmp_path / "ledger.db")
    assert rewritten.verify_chain().ok  # the chain alone cannot tell (L1)
    after = Metrics()
    after.watch(rewritten)
    seq, digest = _published(after)
    assert seq == published[0] and digest != published[1]  # the recorded head can
    rewritten.close()
