"""Findings, observations, proposals, plans and verdicts: plain frozen data, JSON round-trippable.

Everything after the probe runner is a pure function of these values, which is what lets a
recorded incident replay exactly in a drill.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from agent.model.rate import Rate

JSON = dict[str, Any]


class Severity(enum.IntEnum):
    """SEV-1 is an outage or data-loss risk; SEV-4 is cosmetic. Lower number, worse."""

    SEV1 = 1
    SEV2 = 2
    SEV3 = 3
    SEV4 = 4

    def label(self) -> str:
        return f"SEV-{self.value}"

    @classmethod
    def parse(cls, text: str | int) -> Severity:
        """Accept 1, "1", "SEV1", "SEV-1", "sev-1"."""
        raw = str(text).upper().replace("SEV", "").replace("-", "").strip()
        if raw not in {"1", "2", "3", "4"}:
            raise ValueError(f"severity must be SEV-1..SEV-4, got {text!r}")
        return cls(int(raw))


# The vocabulary of finding kinds the bundled tree and triage understand. Plugins may add
# kinds; unknown kinds still reach triage (as SEV by their own severity) and the tree's
# catch-all branch.
_KINDS = (
    "recent_deploy",
    "error_spike",
    "crash_loop",
    "oom_killed",
    "replicas_unavailable",
    "rollout_stuck",
    "pods_pending",
    "cpu_saturated",
    "memory_saturated",
    "hpa_at_max",
    "db_connections_saturated",
    "long_running_queries",
    "lock_contention",
    "idle_in_transaction",
    "dependency_down",
    "dependency_slow",
    "provider_incident",
    "probe_failed",
    "latency_high",
    "slo_burn",
    "alert_condition",
    "gitops_managed",
)


def finding_kinds() -> tuple[str, ...]:
    """The finding kinds Hemostat's own probes emit."""
    return _KINDS


def _iso(value: datetime) -> str:
    return value.isoformat()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Finding:
    """One piece of evidence: what is wrong with which subject, and how bad.

    `subject` names the thing (a deployment, a dependency, a database); `facts` holds the
    structured values the decision tree and the post-mortem quote (sha, error rate, pids).
    """

    kind: str
    subject: str
    severity: Severity
    observed_at: datetime
    summary: str
    probe: str
    evidence: tuple[str, ...] = ()
    facts: JSON = field(default_factory=dict)
    onset: datetime | None = None
    onset_from: str = ""
    rate: Rate | None = None

    @property
    def began(self) -> datetime:
        """The onset, or when the probe looked when the evidence carries no time."""
        return self.onset or self.observed_at

    @property
    def noise(self) -> bool:
        """A measured rate that is not a spike: a small sample, or no worse than its baseline."""
        return self.rate is not None and self.rate.verdict != "spike"

    def to_json(self) -> JSON:
        data = asdict(self)
        data["severity"] = self.severity.label()
        data["observed_at"] = _iso(self.observed_at)
        data["onset"] = _iso(self.onset) if self.onset else None
        data["evidence"] = list(self.evidence)
        data["rate"] = self.rate.to_json() if self.rate else None
        return data

    @classmethod
    def from_json(cls, data: JSON) -> Finding:
        return cls(
            kind=data["kind"],
            subject=data["subject"],
            severity=Severity.parse(data["severity"]),
            observed_at=datetime.fromisoformat(data["observed_at"]),
            summary=data["summary"],
            probe=data["probe"],
            evidence=tuple(data.get("evidence", ())),
            facts=dict(data.get("facts", {})),
            onset=_time(data.get("onset")),
            onset_from=data.get("onset_from", ""),
            rate=Rate.from_json(data["rate"]) if data.get("rate") else None,
        )


@dataclass(frozen=True)
class Observation:
    """What one probe collected for one target: plain JSON-able data, or the gap and why."""

    probe: str
    target: str
    collected_at: datetime
    data: JSON
    error: str | None = None
    error_code: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> JSON:
        out = asdict(self)
        out["collected_at"] = _iso(self.collected_at)
        return out

    @classmethod
    def from_json(cls, data: JSON) -> Observation:
        return cls(
            probe=data["probe"],
            target=data["target"],
            collected_at=datetime.fromisoformat(data["collected_at"]),
            data=dict(data.get("data") or {}),
            error=data.get("error"),
            error_code=data.get("error_code"),
            duration_s=float(data.get("duration_s", 0.0)),
        )


@dataclass(frozen=True)
class DecisionStep:
    """One branch taken in the decision tree, and the findings that made it match."""

    branch: str
    because: str
    findings: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        return {"branch": self.branch, "because": self.because, "findings": list(self.findings)}

    @classmethod
    def from_json(cls, data: JSON) -> DecisionStep:
        return cls(data["branch"], data["because"], tuple(data.get("findings", ())))


@dataclass(frozen=True)
class Proposal:
    """A mitigation the tree suggests: which action, on what, with which parameters, and why."""

    id: str
    target: str
    action: str
    subject: str
    params: JSON
    path: tuple[DecisionStep, ...]
    reason: str
    created_at: datetime
    proposer: str = "hemostat"
    incident_id: str | None = None
    # The rationale an engineer can check: evidence for, evidence weighed against, whether this
    # is the best-supported cause or an alternative, and what the action would do now.
    support: tuple[str, ...] = ()
    against: tuple[str, ...] = ()
    role: Literal["primary", "alternative"] = "primary"
    preview: JSON = field(default_factory=dict)
    # The human whose `hemostat diagnose` produced it: a proposer too, so they cannot approve it.
    triggered_by: str | None = None

    def proposers(self) -> tuple[str, ...]:
        """Everyone who counts as having proposed this (separation of duties)."""
        return (self.proposer, self.triggered_by) if self.triggered_by else (self.proposer,)

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "target": self.target,
            "action": self.action,
            "subject": self.subject,
            "params": self.params,
            "path": [step.to_json() for step in self.path],
            "reason": self.reason,
            "created_at": _iso(self.created_at),
            "proposer": self.proposer,
            "incident_id": self.incident_id,
            "support": list(self.support),
            "against": list(self.against),
            "role": self.role,
            "preview": self.preview,
            **({"triggered_by": self.triggered_by} if self.triggered_by else {}),
        }

    @classmethod
    def from_json(cls, data: JSON) -> Proposal:
        return cls(
            id=data["id"],
            target=data["target"],
            action=data["action"],
            subject=data["subject"],
            params=dict(data.get("params") or {}),
            path=tuple(DecisionStep.from_json(s) for s in data.get("path", ())),
            reason=data["reason"],
            created_at=datetime.fromisoformat(data["created_at"]),
            proposer=data.get("proposer", "hemostat"),
            incident_id=data.get("incident_id"),
            support=tuple(data.get("support", ())),
            against=tuple(data.get("against", ())),
            role=data.get("role", "primary"),
            preview=dict(data.get("preview") or {}),
            triggered_by=data.get("triggered_by"),
        )


@dataclass(frozen=True)
class Change:
    """One exact change a plan makes: the resource, the field, and its value before and after."""

    resource: str
    field: str
    before: Any
    after: Any

    def to_json(self) -> JSON:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The exact change an action will make, computed from live state before anything mutates.

    `state` holds what `execute`, `verify` and `revert` need (for example the replica count to
    return to); it must be JSON-able because the ledger stores it with the execution.
    """

    action: str
    target: str
    subject: str
    summary: str
    changes: tuple[Change, ...]
    touches: tuple[str, ...]
    state: JSON = field(default_factory=dict)
    reversible: bool = True
    blast_radius: JSON = field(default_factory=dict)

    def to_json(self) -> JSON:
        return {
            "action": self.action,
            "target": self.target,
            "subject": self.subject,
            "summary": self.summary,
            "changes": [c.to_json() for c in self.changes],
            "touches": list(self.touches),
            "state": self.state,
            "reversible": self.reversible,
            "blast_radius": self.blast_radius,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Plan:
        return cls(
            action=data["action"],
            target=data["target"],
            subject=data["subject"],
            summary=data["summary"],
            changes=tuple(Change(**c) for c in data.get("changes", ())),
            touches=tuple(data.get("touches", ())),
            state=dict(data.get("state") or {}),
            reversible=bool(data.get("reversible", True)),
            blast_radius=dict(data.get("blast_radius") or {}),
        )


VerdictKind = Literal["allow", "needs_approval", "deny"]


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one proposal: allow, needs_approval or deny, and why."""

    decision: VerdictKind
    mode: str
    reasons: tuple[str, ...]
    approvals_required: int = 0
    limits: JSON = field(default_factory=dict)
    dry_run: bool = False
    blocked_by: str | None = None  # "cooldown": a deny a human may override where policy allows

    def to_json(self) -> JSON:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out

    @classmethod
    def from_json(cls, data: JSON) -> Verdict:
        return cls(
            decision=data["decision"],
            mode=data["mode"],
            reasons=tuple(data.get("reasons", ())),
            approvals_required=int(data.get("approvals_required", 0)),
            limits=dict(data.get("limits") or {}),
            dry_run=bool(data.get("dry_run", False)),
            blocked_by=data.get("blocked_by"),
        )
