"""Ledger retention: `hemostat ledger prune --before DATE --archive FILE` moves resolved incidents
out of the live ledger into an archive file, and `ledger verify-archive FILE` checks one.

The events are one hash chain, so only a prefix goes (see agent/ledger/sql_retention.py for
where it stops). The archive is JSON Lines: a header naming the anchor it starts from, every
event up to the cut exactly as hashed, then the records (incident, proposals, approvals) of
incidents wholly archived, with their revert approvals. It is written to a new file readable
by its owner only (0600) and synced to disk before anything is deleted; then `prune_through`
anchors the chain and deletes the prefix in one transaction, so `ledger verify` still passes.
`verify_archive` re-chains the archive's events, recomputes its records from them (a renamed
approver fails, named: agent.ledger.projection), and, given the live ledger's anchors, requires
the archive to start and end exactly at them, so a fully re-chained archive fails too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from agent.ledger import LedgerError, chain, projection
from agent.ledger.sql import SqlLedger

FORMAT = "hemostat-ledger-archive/1"


@dataclass(frozen=True)
class PruneReport:
    before: datetime
    through_seq: int  # 0: nothing to prune
    events: int
    incidents: list[str] = field(default_factory=list)
    stopped_by: str | None = None
    archive: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "through_seq": self.through_seq,
                "events": self.events, "incidents": self.incidents, "stopped_by": self.stopped_by,
                "archive": self.archive}


def plan(ledger: SqlLedger, before: datetime) -> PruneReport:
    """What a prune would do now; changes nothing."""
    cut = ledger.prune_cut(before)
    incidents = ledger.archived_incidents(before, cut.through_seq) if cut.through_seq else []
    return PruneReport(before, cut.through_seq, cut.events, incidents, cut.stopped_by)


def prune(ledger: SqlLedger, before: datetime, archive: Path, actor: str, now: datetime) -> PruneReport:
    """Archive, sync, then prune. Refuses a ledger that does not verify (nothing is written)."""
    report = plan(ledger, before)
    if report.events == 0:
        return report
    checked = ledger.verify_chain()
    if not checked.ok:
        raise LedgerError(f"the ledger does not verify, so nothing was pruned: {checked.reason}",
                          code="ledger_tampered")
    _write(archive, ledger, report)
    ledger.prune_through(report.through_seq, actor, now)
    ledger.remove_incidents(report.incidents)
    return PruneReport(before, report.through_seq, report.events, report.incidents, report.stopped_by,
                       str(archive))


def _write(path: Path, ledger: SqlLedger, report: PruneReport) -> None:
    anchor = ledger.anchor()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never overwrite; owner only
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        _line(out, {"format": FORMAT, "before": report.before.isoformat(),
                    "after_anchor": None if anchor is None else
                    {"through_seq": anchor.through_seq, "hash": anchor.hash}})
        for row in ledger.chain_rows(anchor.through_seq if anchor else 0):
            if row.seq > report.through_seq:
                break
            _line(out, {"event": {"seq": row.seq, "at": chain.canonical_at(row.at), "type": row.type,
                                  "actor": row.actor, "incident_id": row.incident_id,
                                  "proposal_id": row.proposal_id, "data_text": row.data_text,
                                  "hash": row.hash}})
        for record in ledger.incident_rows(report.incidents):
            _line(out, {"record": record})
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class ArchiveCheck:
    """An archive's events re-chained: `end` is the link the live ledger's anchor must equal."""

    checked: int
    end: chain.Anchor | None
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def verify_archive(path: Path, anchors: list[chain.Anchor] | None = None) -> ArchiveCheck:
    """Re-chain an archive's events from the anchor it starts after to its last event, compare
    its records with what those events say, and (given `anchors`, the live ledger's) require it
    to start and end at anchors the live ledger holds."""
    with path.open(encoding="utf-8") as src:
        header = json.loads(next(src, "{}"))
        if header.get("format") != FORMAT:
            raise LedgerError(f"{path} is not a Hemostat ledger archive ({FORMAT})", code="archive")
        start = header.get("after_anchor")
        prev = start["hash"] if start else chain.GENESIS
        checked, end, want = 0, None, projection.Expected()
        records: dict[str, list[dict[str, Any]]] = {}
        for kind, item in _items(src):
            if kind == "record":
                records.setdefault(item["table"], []).append(item["row"])
                continue
            row = item
            if row.hash != row.expected(prev):
                return ArchiveCheck(checked, end, row.seq, f"{row.describe()} does not chain to the "
                                    "event before it: the archive was changed")
            want.add(row)
            checked, prev, end = checked + 1, row.hash or "", chain.Anchor(row.seq, row.hash or "")
    problems = projection.compare(want, records, complete=start is None)
    if problems:
        return ArchiveCheck(checked, end, None,
                            "its records do not match its events: " + "; ".join(problems[:5]))
    return _against(checked, end, start, anchors)


def _against(checked: int, end: chain.Anchor | None, start: dict[str, Any] | None,
             anchors: list[chain.Anchor] | None) -> ArchiveCheck:
    if anchors is None:
        return ArchiveCheck(checked, end)
    if end is None or end not in anchors:
        return ArchiveCheck(checked, end, None, f"it ends at {end.through_seq if end else 'nothing'}:"
                            f"{end.hash[:12] if end else ''}..., which is no anchor of the live ledger: "
                            "the archive was re-chained, or is not this ledger's")
    if start is not None and chain.Anchor(start["through_seq"], start["hash"]) not in anchors:
        return ArchiveCheck(checked, end, None, "it starts after no anchor of the live ledger")
    return ArchiveCheck(checked, end)


def _items(lines: IO[str]) -> Iterator[tuple[str, Any]]:
    """("event", ChainRow) and ("record", {"table", "row"}) lines, in file order."""
    for line in lines:
        doc = json.loads(line)
        event = doc.get("event")
        if event is not None:
            at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
            yield "event", chain.ChainRow(event["seq"], at, event["type"], event["actor"],
                                          event["incident_id"], event["proposal_id"],
                                          event["data_text"], event["hash"])
        elif isinstance(doc.get("record"), dict):
            yield "record", doc["record"]


def _line(out: IO[str], doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc, default=str, sort_keys=True) + "\n")


