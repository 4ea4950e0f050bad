"""Triage: SEV-1..SEV-4 from the findings, and the four answers a tired engineer needs —
what is broken, since when, what changed recently, how much is affected. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.model import Finding, Severity

# Kinds that describe context, not damage: they never raise severity on their own.
CONTEXT_KINDS = frozenset({"recent_deploy", "probe_failed"})


@dataclass(frozen=True)
class Triage:
    severity: Severity | None  # None: nothing is wrong
    headline: str
    broken: tuple[str, ...]
    since: datetime | None
    changed: tuple[str, ...]
    impact: tuple[str, ...]
    gaps: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.label() if self.severity else None,
            "headline": self.headline, "broken": list(self.broken),
            "since": self.since.isoformat() if self.since else None,
            "changed": list(self.changed), "impact": list(self.impact), "gaps": list(self.gaps),
        }


def triage(findings: Sequence[Finding], target: str, started_at: datetime | None = None) -> Triage:
    problems = [f for f in findings if f.kind not in CONTEXT_KINDS]
    changed = tuple(f.summary for f in findings if f.kind == "recent_deploy")
    gaps = tuple(f.summary for f in findings if f.kind == "probe_failed")
    if not problems:
        return Triage(None, f"{target}: no problem found", (), None, changed, (), gaps)
    severity = _severity(problems)
    worst = sorted(problems, key=lambda f: (f.severity, f.kind))
    since = min([f.observed_at for f in problems] + ([started_at] if started_at else []))
    return Triage(
        severity=severity,
        headline=f"{severity.label()} {target}: {worst[0].summary}",
        broken=tuple(f"{f.subject}: {f.summary}" for f in worst),
        since=since, changed=changed, impact=_impact(problems), gaps=gaps,
    )


def _severity(problems: Sequence[Finding]) -> Severity:
    """The worst finding's severity, one level worse when three or more kinds of damage hit
    more than one thing at once (the blast radius is wider than any one signal says)."""
    worst = min(f.severity for f in problems)
    kinds, subjects = {f.kind for f in problems}, {f.subject for f in problems}
    if len(kinds) >= 3 and len(subjects) >= 2 and worst > Severity.SEV1:
        return Severity(worst - 1)
    return worst


def _impact(problems: Sequence[Finding]) -> tuple[str, ...]:
    out = []
    for f in problems:
        if f.kind == "error_spike" and f.facts.get("ratio") is not None:
            out.append(f"{float(f.facts['ratio']):.0%} of {f.subject}'s requests failing")
        elif f.kind == "dependency_down":
            out.append(f"{f.subject} unreachable" + (" (critical)" if f.facts.get("critical") else ""))
        elif f.kind == "replicas_unavailable" and "available" in f.facts:
            out.append(f"{f.facts['available']}/{f.facts.get('desired', '?')} replicas of "
                       f"{f.subject} available")
        elif f.kind == "db_connections_saturated" and "ratio" in f.facts:
            out.append(f"{f.subject} connections {float(f.facts['ratio']):.0%} used")
    return tuple(out)
