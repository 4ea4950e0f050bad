"""Verification by effect, second half: the symptom a mitigation was for, measured again.

An action's own `verify` checks its effect on the live object (the restored image, the replicas,
the flag's or failover key's value, the breaker's state, the killed pids gone). That the effect
is in place does not mean it helped: a failover the app ignores is in place while every request
still fails. So once the action's verify holds, the executor re-runs the probes that saw the
proposal's symptoms (its path's, and the `finding` events of its incident), every `symptom_poll_s`, until the
action's settle window (`symptom_settle_s`, the action's own or the executor's) has passed since
the change, and calls the mitigation verified only when the symptoms are gone:

- a symptom's finding present again, not noise, is the symptom persisting;
- a rate whose window began before the change still carries the failure in it: it counts
  neither way (the baseline of the judgement must not overlap the change); another probe that
  measured after the change and saw nothing decides then;
- a probe that could not look leaves the symptom unmeasured, never "gone".

Still there or unmeasured when the window closes: "not verified", and the incident escalates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actions.base import Outcome
from agent.ledger import Ledger
from agent.model import Finding, Observation, Proposal

Measure = Callable[[list[str] | None], Awaitable[tuple[list[Observation], list[Finding]]]]
Sleep = Callable[[float], Awaitable[None]]
Ref = tuple[str, str]  # (finding kind, subject)


def symptoms_of(ledger: Ledger, proposal: Proposal,
                symptom_kinds: Sequence[str]) -> tuple[list[Ref], list[str] | None]:
    """(the symptoms the proposal was made for, the probes that saw them): its decision path's
    findings of symptom kinds, and its incident's (a failover's path names the dependency, but
    what it is for is the app's errors). The probes are None when the ledger does not say (then
    every probe of the target looks again)."""
    refs: list[Ref] = []
    for step in proposal.path:
        for ref in step.findings:
            kind, _, subject = ref.partition(":")
            if kind in symptom_kinds and (kind, subject) not in refs:
                refs.append((kind, subject))
    probes: set[str] = set()
    if proposal.incident_id is not None:
        for event in ledger.events(incident_id=proposal.incident_id, types=("finding",)):
            data = event.data
            key = (str(data.get("kind")), str(data.get("subject")))
            if key[0] not in symptom_kinds or (data.get("rate") or {}).get("verdict", "spike") != "spike":
                continue
            if key not in refs:
                refs.append(key)
            if data.get("probe"):
                probes.add(str(data["probe"]))
    return refs, (sorted(probes) if probes else None)


@dataclass(frozen=True)
class Reading:
    """One re-measurement: whether the symptoms are gone (None: cannot tell yet), and why."""

    gone: bool | None
    detail: str


def read(refs: Sequence[Ref], observations: Sequence[Observation], findings: Sequence[Finding],
         changed_at: datetime) -> Reading:
    failed = [o for o in observations if not o.ok]
    if failed:
        first = failed[0]
        return Reading(None, f"the symptom could not be measured again ({first.probe}: {first.error})")
    hits = [f for f in findings if (f.kind, f.subject) in refs and not f.noise]
    persisting = [f for f in hits if _window_start(f) >= changed_at]
    if persisting:
        return Reading(False, f"the symptom persists: {persisting[0].summary}")
    # Only hits whose window reaches back before the change (a log window with the old lines):
    # gone only if another probe measured after the change and saw none.
    clean = [o.probe for o in observations if o.probe not in {f.probe for f in hits}]
    if hits and not clean:
        return Reading(None, f"the symptom's window still reaches back before the change: {hits[0].summary}")
    return Reading(True, "the symptom is gone: " + ", ".join(f"no {k} on {s}" for k, s in refs)
                   + (f" (measured after the change by {', '.join(clean)})" if hits else ""))


def _window_start(finding: Finding) -> datetime:
    if finding.rate is None:
        return finding.observed_at
    return finding.observed_at - timedelta(seconds=finding.rate.window_s)


async def remeasure(refs: Sequence[Ref], probes: list[str] | None, measure: Measure,
                    now: Callable[[], datetime], sleep: Sleep, changed_at: datetime, settle_s: float,
                    poll_s: float) -> Outcome:
    """Re-measure until the symptoms are gone or `settle_s` after `changed_at` has passed."""
    deadline = changed_at + timedelta(seconds=settle_s)
    checks = 0
    while True:
        observations, findings = await measure(probes)
        checks += 1
        reading = read(refs, observations, findings, changed_at)
        if reading.gone:
            return Outcome(True, reading.detail, {"symptom": "gone", "checks": checks})
        if now() >= deadline:
            state = "persists" if reading.gone is False else "unmeasured"
            return Outcome(False, f"{reading.detail} ({settle_s:g}s after the change)",
                           {"symptom": state, "checks": checks})
        await sleep(poll_s)


def settle_of(action: Any, default_s: float) -> float:
    """How long the action's effect may take to show in the symptom."""
    return float(getattr(action, "symptom_settle_s", default_s))
