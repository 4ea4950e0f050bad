"""Ledger records back from their JSON form (`to_json`), for readers that get them over HTTP:
`hemostat incidents --server URL` renders what the daemon's read API sends exactly as it
renders what it reads from the ledger itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.ledger.base import Event, IncidentRecord, ProposalRecord
from agent.model import Proposal, Verdict
from agent.model.identity import Approval, Identity


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def event(doc: dict[str, Any]) -> Event:
    return Event(seq=int(doc["seq"]), at=datetime.fromisoformat(doc["at"]), type=doc["type"],
                 actor=doc["actor"], incident_id=doc.get("incident_id"),
                 proposal_id=doc.get("proposal_id"), data=dict(doc.get("data") or {}))


def incident(doc: dict[str, Any]) -> IncidentRecord:
    return IncidentRecord(id=doc["id"], target=doc["target"], title=doc["title"], status=doc["status"],
                          severity=int(str(doc["severity"]).removeprefix("SEV-")),
                          opened_at=datetime.fromisoformat(doc["opened_at"]),
                          updated_at=datetime.fromisoformat(doc["updated_at"]),
                          group_key=doc.get("group_key"), resolved_at=_at(doc.get("resolved_at")),
                          data=dict(doc.get("data") or {}))


def _approval(doc: dict[str, Any]) -> Approval:
    return Approval(Identity.from_json(doc), datetime.fromisoformat(doc["at"]), doc.get("kind", "proposal"))


def proposal(doc: dict[str, Any]) -> ProposalRecord:
    return ProposalRecord(proposal=Proposal.from_json(doc), verdict=Verdict.from_json(doc["verdict"]),
                          state=doc["state"], updated_at=datetime.fromisoformat(doc["updated_at"]),
                          expires_at=_at(doc.get("expires_at")), approvers=tuple(doc.get("approvers") or ()),
                          plan=doc.get("plan"), claimed_by=doc.get("claimed_by"),
                          approvals=tuple(_approval(a) for a in doc.get("approvals") or ()),
                          revert_approvals=tuple(_approval(a) for a in doc.get("revert_approvals") or ()))
