"""The events' hash chain: each event's hash covers its content and the hash before it.

Both backends store `events.hash`; SQLite computes it here when appending, PostgreSQL in a
BEFORE INSERT trigger (`events_chain`, see agent/ledger/pg_trust.py) so that events written by
SQL functions are chained too. The two must agree byte for byte, so the input is spelled out:

    hash = sha256( F(prev) | F(seq) | F(at) | F(type) | F(actor) | F(incident_id)
                   | F(proposal_id) | F(data) ).hexdigest()

where `F(None) = "~"`, `F(s) = "<len(s) in characters>:<s>"` (no field can bleed into the next),
`at` is UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `data` is the JSON text the backend stores
(SQLite: the text written; PostgreSQL: `data::text` of the jsonb), and the first `prev` is "".

Pruning (for `hemostat ledger prune`): a prefix of events may be deleted only together with an
*anchor* — a row in `ledger_anchors(through_seq, hash)` holding the hash of the last pruned event
— and a `ledger_pruned` event appended to the chain whose data repeats that anchor. Both backends'
triggers allow DELETE only of events an anchor covers. `verify` then starts from the newest anchor
instead of "", and requires the anchor to be confirmed by such an event, so a forged anchor (or
one rewritten to hide a changed prefix) is itself a broken link. Use `SqlLedger.prune_through`,
which does all three in one transaction; never delete events any other way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = ""
PRUNED = "ledger_pruned"


def canonical_at(at: datetime) -> str:
    """The timestamp as hashed: UTC, microseconds (both backends keep exactly that much)."""
    aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field(value: str | None) -> str:
    return "~" if value is None else f"{len(value)}:{value}"


def link(prev: str, seq: int, at: datetime, type: str, actor: str, incident_id: str | None,
         proposal_id: str | None, data_text: str) -> str:
    """The hash of one event chained to `prev` (see the module docstring for the exact input)."""
    parts = (prev, str(seq), canonical_at(at), type, actor, incident_id, proposal_id, data_text)
    return hashlib.sha256("|".join(_field(p) for p in parts).encode()).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    """An event as stored, with the JSON text that was hashed."""

    seq: int
    at: datetime
    type: str
    actor: str
    incident_id: str | None
    proposal_id: str | None
    data_text: str
    hash: str | None

    def expected(self, prev: str) -> str:
        return link(prev, self.seq, self.at, self.type, self.actor, self.incident_id,
                    self.proposal_id, self.data_text)

    def describe(self) -> str:
        return f"event {self.seq} ({self.type} by {self.actor} at {canonical_at(self.at)})"


@dataclass(frozen=True)
class Anchor:
    """The last pruned event: its seq and hash, where verification resumes."""

    through_seq: int
    hash: str


@dataclass(frozen=True)
class Verification:
    """What `verify` found. `broken_seq` is the first event that does not chain (None if all do)."""

    checked: int
    first_seq: int | None
    head_seq: int | None
    head_hash: str | None
    anchor: Anchor | None = None
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_seq": self.first_seq,
                "head_seq": self.head_seq, "head_hash": self.head_hash,
                "anchor": None if self.anchor is None else
                {"through_seq": self.anchor.through_seq, "hash": self.anchor.hash},
                "broken_seq": self.broken_seq, "reason": self.reason}


def verify(rows: Iterable[ChainRow], anchor: Anchor | None,
           expect: Anchor | None = None) -> Verification:
    """Walk `rows` (every event after the anchor, in seq order) and stop at the first break.
    `expect` is a head written down earlier (seq, hash): the chain must still hold it, which
    also catches events cut from the end, where no later link could break."""
    prev = anchor.hash if anchor else GENESIS
    before = f"the anchor at event {anchor.through_seq}" if anchor else "the start of the ledger"
    checked, first, last, confirmed = 0, None, None, anchor is None
    for row in rows:
        if row.hash != row.expected(prev):
            return Verification(checked, first, last, prev or None, anchor, row.seq, _why(row, before))
        # `expect` may hold a prefix of the hash (as written down: at least 8 hex digits)
        if expect is not None and row.seq == expect.through_seq and not row.hash.startswith(expect.hash):
            return Verification(checked, first, last, prev or None, anchor, row.seq,
                                f"{row.describe()} is not the event written down as {expect.hash}: "
                                "the ledger up to it was rewritten")
        confirmed = confirmed or _confirms(row, anchor)
        first = row.seq if first is None else first
        checked, last, prev, before = checked + 1, row.seq, row.hash, row.describe()
    if not confirmed:
        assert anchor is not None
        return Verification(checked, first, last, prev or None, anchor, anchor.through_seq,
                            f"the anchor at event {anchor.through_seq} is not confirmed by a "
                            f"{PRUNED} event in the chain: the anchor was forged or altered")
    if expect is not None and expect.through_seq > (last or 0):
        return Verification(checked, first, last, prev or None, anchor, expect.through_seq,
                            f"the ledger ends at event {last}, before event {expect.through_seq} "
                            "written down earlier: events were cut from its end")
    return Verification(checked, first, last, prev or None, anchor)


def _why(row: ChainRow, before: str) -> str:
    if row.hash is None:
        return f"{row.describe()} has no hash"
    return (f"{row.describe()} does not match its hash chained to {before}: this event was "
            "changed, or one before it was changed, inserted or removed")


def _confirms(row: ChainRow, anchor: Anchor | None) -> bool:
    if anchor is None or row.type != PRUNED:
        return False
    try:
        data = json.loads(row.data_text)
    except ValueError:
        return False
    return bool(data.get("through_seq") == anchor.through_seq and data.get("hash") == anchor.hash)
