"""The records, recomputed from the chain: `ledger verify` compares the proposals, approvals and
incidents tables with what the events say they must be, so a forged or edited row fails verify,
named (issue 23, H3: `UPDATE proposals SET state='approved'`, `INSERT INTO approvals`, an edited
subject once passed it).

What the events fix:
- proposals: the `proposal` event creates one (its content: target, action, subject, params; its
  initial state); `proposal_<state>` and `execution_started` events move its state;
- approvals: each `approval` event adds one (proposal, source, subject);
- incidents: `incident_opened` creates one; `status_changed` sets its status.
With the seal key (`store.seal_key`), every approval event but an approver login's own must carry
the daemon's seal, from the first sealed one on (earlier ones predate the key): the runtime role
can append an `approval` event, but not seal it.
After pruning (an anchor), rows whose creating event was pruned cannot be recomputed and are not
checked; everything created after the anchor is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.ledger.binding import content_hash, sealed
from agent.ledger.chain import ChainRow

STATE_EVENTS = {"execution_started": "executing"}


@dataclass
class Expected:
    """What the tables must hold, from the events."""

    proposals: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (state, content)
    approvals: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # id -> {(source, subject)}
    incidents: dict[str, str | None] = field(default_factory=dict)  # id -> status (None: initial)
    seal_key: bytes | None = None
    unsealed: list[str] = field(default_factory=list)  # approval events the daemon did not seal
    _sealing: bool = False  # a sealed approval was seen: every later one must be sealed

    def add(self, row: ChainRow) -> None:
        pid, data = row.proposal_id, _data(row)
        if row.type == "proposal" and pid:
            self.proposals[pid] = (str(data.get("state")), content_hash(data.get("proposal") or {}))
            self.approvals.setdefault(pid, set())
        elif pid in self.proposals and (row.type.startswith("proposal_") or row.type in STATE_EVENTS):
            state = STATE_EVENTS.get(row.type, row.type.removeprefix("proposal_"))
            self.proposals[pid] = (state, self.proposals[pid][1])
        elif row.type == "approval" and pid in self.proposals:
            who = data.get("identity") or {}
            self.approvals[pid].add((str(who.get("source")), str(who.get("subject"))))
            self._check_seal(row, pid, data, str(who.get("source")))
        elif row.type == "incident_opened" and row.incident_id:
            self.incidents[row.incident_id] = None
        elif row.type == "status_changed" and row.incident_id in self.incidents:
            self.incidents[row.incident_id] = str(data.get("to"))


    def _check_seal(self, row: ChainRow, pid: str, data: dict[str, Any], source: str) -> None:
        if self.seal_key is None or source == "postgres":
            return
        if sealed(self.seal_key, pid, data):
            self._sealing = True
        elif self._sealing or "seal" in data:
            self.unsealed.append(f"{row.describe()}: an approval of {pid} without the daemon's seal")


def expected(rows: Iterable[ChainRow]) -> Expected:
    found = Expected()
    for row in rows:
        found.add(row)
    return found


def differences(want: Expected, cur: Any, complete: bool) -> list[str]:
    """Every row of the live tables that is not what the events say, named; `complete`: the
    chain starts at the beginning (no anchor), so a row no event created is itself a forgery."""
    tables = {}
    for table, columns in COLUMNS.items():
        cur.execute(f"SELECT {', '.join(columns)} FROM {table}")
        tables[table] = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    return compare(want, tables, complete)


COLUMNS = {"proposals": ("id", "state", "proposal", "target", "action"),
           "approvals": ("proposal_id", "source", "subject"), "incidents": ("id", "status")}


def compare(want: Expected, tables: dict[str, list[dict[str, Any]]], complete: bool) -> list[str]:
    """`tables` (rows as dicts, by table name: the live ledger's or an archive's records)
    against the events; every difference, named."""
    problems: list[str] = list(want.unsealed)
    for row in sorted(tables.get("proposals", []), key=lambda r: str(r["id"])):
        problems += _proposal(want, row, complete)
    for row in sorted(tables.get("approvals", []), key=lambda r: (str(r["proposal_id"]), str(r["subject"]))):
        pid, source, subject = row["proposal_id"], row["source"], row["subject"]
        if (pid in want.approvals or complete) and (source, subject) not in want.approvals.get(pid, set()):
            problems.append(f"approvals row ({pid}, {source}:{subject}): no approval event records it")
    for row in sorted(tables.get("incidents", []), key=lambda r: str(r["id"])):
        iid, status = row["id"], row["status"]
        if iid not in want.incidents:
            if complete:
                problems.append(f"incidents row {iid}: no incident_opened event created it")
        elif want.incidents[iid] is not None and status != want.incidents[iid]:
            problems.append(f"incidents row {iid}: status {status!r}, but its events say "
                            f"{want.incidents[iid]!r}")
    return problems


def _proposal(want: Expected, row: dict[str, Any], complete: bool) -> list[str]:
    pid, proposal = row["id"], _json(row["proposal"])
    if pid not in want.proposals:
        return [f"proposals row {pid}: no proposal event created it"] if complete else []
    problems = []
    want_state, want_content = want.proposals[pid]
    if row["state"] != want_state:
        problems.append(f"proposals row {pid}: state {row['state']!r}, but its events say {want_state!r}")
    if content_hash(proposal) != want_content or (row["target"], row["action"]) != \
            (proposal.get("target"), proposal.get("action")):
        problems.append(f"proposals row {pid}: its target, action, subject or params differ "
                        "from its proposal event")
    return problems


def _data(row: ChainRow) -> dict[str, Any]:
    try:
        data = json.loads(row.data_text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _json(value: Any) -> dict[str, Any]:
    doc = json.loads(value) if isinstance(value, str) else value
    return doc if isinstance(doc, dict) else {}
