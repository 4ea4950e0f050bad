"""What an approval is bound to: the proposal's content, hashed, and (with a seal key) a seal only
the daemon can make.

- `content_hash(proposal)`: SHA-256 over the canonical JSON of what would run (target, action,
  subject, params). Every approval event carries it, and the chain's `proposal` event carries the
  content it hashes, so an edited proposals row no longer matches what was approved.
- `seal(key, proposal_id, content, identity)`: an HMAC-SHA256 the daemon puts on the approvals it
  records for identities it authenticated (Kubernetes, Slack, asserted). The key is a Secret the
  ledger's roles never see (`store.seal_key`), so whoever holds only the runtime role's DSN can
  append an `approval` event but cannot seal it. Approvals by approvers' own PostgreSQL logins
  (source `postgres`) need no seal: the database lets only its `hemostat_approve` function write
  those (agent/ledger/pg_trust.py, EVENT_GUARD).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

CONTENT_FIELDS = ("target", "action", "subject", "params")
REVERT = "revert:"  # a revert approval's content: this prefix and the proposal's content hash


def content_hash(proposal: dict[str, Any]) -> str:
    """The hash of what a proposal would do (its JSON form, as `Proposal.to_json()` gives it)."""
    doc = {k: proposal.get(k) for k in CONTENT_FIELDS}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


def seal(key: bytes, proposal_id: str, content: str, identity: dict[str, Any]) -> str:
    """The daemon's seal on one approval of `proposal_id`'s `content` by `identity`."""
    message = json.dumps([proposal_id, content, identity], sort_keys=True, separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def sealed(key: bytes, proposal_id: str, data: dict[str, Any]) -> bool:
    """Whether an approval event's `data` carries a good seal for `proposal_id`."""
    given, content, identity = data.get("seal"), data.get("content"), data.get("identity")
    if not isinstance(given, str) or not isinstance(content, str) or not isinstance(identity, dict):
        return False
    return hmac.compare_digest(given, seal(key, proposal_id, content, identity))
