"""Triage: SEV-1..SEV-4 from the findings, and the four answers a tired engineer needs —
what is broken, since when, what changed recently, how much is affected — plus what could not be
looked at. Pure.

Severity comes from impact: the worst damage finding, where a measured rate that is a small
sample or no worse than its baseline is noise and never raises it. The blast radius widens it one
level only for independent causes or several user-facing subjects hit, never for several probes
seeing the same cause. A probe that failed makes the diagnosis incomplete: it never lowers the
severity and never reads as "no problem found".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.diagnosis.evidence import CHANGE_KINDS, CONTEXT_KINDS, problems
from agent.model import Finding, Severity, shorten
from agent.model.rate import LIFETIME
from policies.tree import SYMPTOM_KINDS

DEPENDENCY_KINDS = frozenset({"dependency_down", "dependency_slow", "provider_incident"})
WIDE_CAUSES = 3  # independent causes at once that widen the blast radius by one level
WIDE_SUBJECTS = 2  # user-facing subjects damaged at once that do the same
LOOK_AGAIN_S = 120.0  # a sample too small to judge is measured again this much later


@dataclass(frozen=True)
class Gap:
    """A probe that could not look, and why: the diagnosis is incomplete without it."""

    probe: str
    why: str
    code: str | None

    def to_json(self) -> dict[str, Any]:
        return {"probe": self.probe, "why": self.why, "code": self.code}


@dataclass(frozen=True)
class Triage:
    severity: Severity | None  # None: nothing is wrong in what could be read
    headline: str
    broken: tuple[str, ...]
    since: datetime | None
    changed: tuple[str, ...]
    impact: tuple[str, ...]
    gaps: tuple[str, ...]
    missing: tuple[Gap, ...] = ()
    noise: tuple[str, ...] = ()  # findings judged noise: a small sample, or at baseline
    # Too few requests to judge, even after widening the window: when to look again (the
    # daemon schedules a re-diagnosis then), never silence.
    look_again_at: datetime | None = None

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.label() if self.severity else None,
            "headline": self.headline, "broken": list(self.broken),
            "since": self.since.isoformat() if self.since else None,
            "changed": list(self.changed), "impact": list(self.impact), "gaps": list(self.gaps),
            "complete": self.complete, "missing": [g.to_json() for g in self.missing],
            "noise": list(self.noise),
            **({"look_again_at": self.look_again_at.isoformat()} if self.look_again_at else {}),
        }


def triage(findings: Sequence[Finding], target: str, started_at: datetime | None = None,
           cause_onset: datetime | None = None, look_again_s: float = LOOK_AGAIN_S) -> Triage:
    """`cause_onset`: when the decision's best-supported cause began, which is what "since"
    answers; without one, the earliest onset of the damage. Nothing wrong but a sample too small
    to judge: "need more data", and when it will be looked at again (`look_again_s` after
    `started_at`)."""
    hurt = problems(findings)
    changed = tuple(f.summary for f in findings if f.kind in CHANGE_KINDS)
    missing = tuple(Gap(f.subject, str(f.facts.get("error") or f.summary), f.facts.get("error_code"))
                    for f in findings if f.kind == "probe_failed")
    gaps = tuple(f.summary for f in findings if f.kind == "probe_failed")
    noise = tuple(f.summary for f in findings if f.noise)
    if not hurt:
        small = [f for f in findings if f.rate is not None and f.rate.unit == "ratio"
                 and f.rate.verdict == "small_sample"]  # too few requests (thin logs are a judgement)
        if small and not missing and started_at is not None:
            again = started_at + timedelta(seconds=look_again_s)
            return Triage(None, f"{target}: need more data: {small[0].summary}; looking again at "
                                f"{again:%H:%M}Z", (), None, changed, (), gaps, missing, noise, again)
        return Triage(None, _quiet_headline(target, missing, noise), (), None, changed, (), gaps,
                      missing, noise)
    severity = _severity(hurt)
    worst = sorted(hurt, key=lambda f: ("root_cause" not in f.facts, f.severity, f.kind))  # cause heads
    since = cause_onset or min(f.began for f in hurt)
    if started_at is not None and since > started_at:
        since = started_at  # the alert (or the engineer) saw it no later than this
    headline = f"{severity.label()} {target}: {worst[0].summary}" + _incomplete(missing)
    return Triage(severity, headline, tuple(f"{f.subject}: {f.summary}" for f in worst), since,
                  changed, _impact(hurt), gaps, missing, noise)


def _quiet_headline(target: str, missing: Sequence[Gap], noise: Sequence[str]) -> str:
    if missing:
        return (f"{target}: diagnosis incomplete: nothing wrong in what could be read, but "
                + "; ".join(f"{g.probe} could not look ({shorten(g.why, 80)})" for g in missing))
    if noise:
        return f"{target}: no incident (likely false alarm): {noise[0]}"
    return f"{target}: no problem found"


def _incomplete(missing: Sequence[Gap]) -> str:
    if not missing:
        return ""
    return " [incomplete: " + ", ".join(f"{g.probe} could not look" for g in missing) + "]"


def _severity(hurt: Sequence[Finding]) -> Severity:
    """The worst damage, one level worse when the blast radius is wide: several independent
    causes at once, or several user-facing subjects damaged."""
    worst = min(f.severity for f in hurt)
    causes = independent_causes(hurt)
    facing = {f.subject for f in hurt if f.kind in SYMPTOM_KINDS}
    if (len(causes) >= WIDE_CAUSES or len(facing) >= WIDE_SUBJECTS) and worst > Severity.SEV1:
        return Severity(worst - 1)
    return worst


def independent_causes(hurt: Sequence[Finding]) -> set[str]:
    """One key per cause: a dependency's findings (down, slow, its status page) and the app's
    errors that name it are one cause; everything else is keyed by its subject."""
    deps = {f.subject for f in hurt if f.kind in DEPENDENCY_KINDS}
    keys = set(deps)
    for f in hurt:
        if f.kind in DEPENDENCY_KINDS:
            continue
        named = [d for d in deps if _names(f, d)]
        keys.add(named[0] if named else f.subject)
    return keys


def _names(finding: Finding, subject: str) -> bool:
    lines = [str(g.get(k) or "") for g in finding.facts.get("top") or [] for k in ("signature", "example")]
    return any(re.search(rf"(?<![a-z0-9]){re.escape(subject)}", line, re.IGNORECASE) for line in lines)


def _impact(hurt: Sequence[Finding]) -> tuple[str, ...]:
    out = []
    for f in hurt:
        if f.kind == "error_spike" and f.rate is not None and f.rate.unit == "ratio":
            since = " since the app started" if f.rate.baseline_from == LIFETIME else ""
            base = f", baseline {f.rate.baseline:.0%}{since}" if f.rate.baseline is not None else ""
            out.append(f"{f.rate.value:.0%} of {f.subject}'s requests failing "
                       f"(n={f.rate.samples} in {f.rate.window_s:.0f}s{base})")
        elif f.kind == "error_spike" and f.facts.get("ratio") is not None:
            out.append(f"{float(f.facts['ratio']):.0%} of {f.subject}'s requests failing")
        elif f.kind == "dependency_down":
            out.append(f"{f.subject} unreachable" + (" (critical)" if f.facts.get("critical") else ""))
        elif f.kind == "replicas_unavailable" and "available" in f.facts:
            out.append(f"{f.facts['available']}/{f.facts.get('desired', '?')} replicas of "
                       f"{f.subject} available")
        elif f.kind == "db_connections_saturated" and "ratio" in f.facts:
            out.append(f"{f.subject} connections {float(f.facts['ratio']):.0%} used")
    return tuple(out)


__all__ = ["CONTEXT_KINDS", "Gap", "Triage", "independent_causes", "triage"]
