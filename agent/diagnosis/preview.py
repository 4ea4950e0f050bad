"""What a proposed action would do now, computed from the evidence, for the approver to see
before anything runs: the PostgreSQL pids and queries `kill-queries` would cancel, the revision
and image `rollback` would return to, the replica count `scale-up` would set. Pure.

The action plans again from live state when it executes; the executor records the preview
beside that plan, so a difference (a session that ended, a new rollout) is visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from agent.model import Finding, shorten

JSON = dict[str, Any]


def preview(action: str, subject: str, params: JSON, findings: Sequence[Finding]) -> tuple[JSON, JSON]:
    """(preview, params): the preview, and the params with anything the evidence pins down
    (the revision to roll back to) filled in."""
    build = _PREVIEWS.get(action)
    shown: JSON = {}
    if build is not None:
        shown, params = build(subject, params, findings)
        shown = _under_gitops(shown, findings)
    if action in VERIFIES:
        shown = {**shown, "verify": f"{VERIFIES[action]}; then the symptom is measured again and must "
                                    "be gone within the action's settle window, else it is 'not verified' "
                                    "and escalates"}
    return shown, params


# What verification checks on the live object, for the approver (actions/*.py verify; the
# symptom re-measure is agent/execution/symptom.py).
VERIFIES = {
    "rollback": "the live workload runs the template (image) the rollback restores, not the suspect one, "
                "and its rollout is available (under GitOps: the revert synced, then the same)",
    "scale-up": "the planned replicas are available",
    "failover": "the fallback key reads the secondary",
    "feature-flag-off": "the flag reads off",
    "circuit-break": "the breaker is held open for every app instance",
    "kill-queries": "the planned pids are gone and the finding does not come back",
}


def _under_gitops(shown: JSON, findings: Sequence[Finding]) -> JSON:
    """A GitOps controller that auto-syncs the subject changes what the action will really do:
    the policy's gitops rule decides (docs/gitops.md), so the preview says so."""
    owner = next((f for f in findings if f.kind == "gitops_managed" and f.facts.get("auto_sync")), None)
    if owner is None or not shown:
        return shown
    return {**shown, "gitops": owner.summary,
            "summary": f"{shown['summary']}; {owner.summary}: the policy's gitops rule decides how "
                       "(a git revert unless it says otherwise)"}


def _kill_queries(subject: str, params: JSON, findings: Sequence[Finding]) -> tuple[JSON, JSON]:
    reason = params.get("reason")
    finding = next((f for f in findings if f.kind == reason and f.subject == subject), None)
    if finding is None:
        return {}, params
    rows = finding.facts.get("root_blockers" if reason == "lock_contention" else "sessions")
    sessions = [{"pid": s.get("pid"), "user": s.get("user"), "state": s.get("state"),
                 "query": shorten(str(s.get("query") or ""), 160),
                 **({"blocks": s["blocks"]} if "blocks" in s else {})} for s in rows or []]
    pids = ", ".join(str(s["pid"]) for s in sessions)
    what = "root blocker(s)" if reason == "lock_contention" else "session(s)"
    return {"summary": f"would cancel {len(sessions)} {what} in {subject}: pid {pids}",
            "sessions": sessions}, {**params, "pids": [s["pid"] for s in sessions]}


def _rollback(subject: str, params: JSON, findings: Sequence[Finding]) -> tuple[JSON, JSON]:
    deploys = [f for f in findings if f.kind == "recent_deploy"]
    change = max(deploys, key=lambda f: f.began) if deploys else None  # the newest that passed
    if change is None:
        return {}, params
    facts = change.facts
    if facts.get("previous_revision") is not None:  # a rollout: the revision before it is known
        to = int(facts["previous_revision"])
        return {"summary": f"would roll {subject} back from revision {facts.get('revision')} "
                           f"({facts.get('image')}) to revision {to} ({facts.get('previous_image')})",
                "from_revision": facts.get("revision"), "to_revision": to,
                "from_image": facts.get("image"), "to_image": facts.get("previous_image")}, \
            {**params, "to_revision": to}
    named = {**params, "commits": [str(facts["sha"])]} if facts.get("sha") and "commits" not in params \
        else params  # a git-revert reverts exactly the commit the evidence names, never HEAD
    image = f" (image {facts['image']} back to {facts['previous_image']})" \
        if facts.get("image_changed") and facts.get("previous_image") else ""
    return {"summary": f"would roll {subject} back to the revision it ran before deploy "
                       f"{facts.get('short')} landed at {str(facts.get('at', ''))[11:16]}{image}",
            "change": facts.get("sha"), "landed": facts.get("at")}, named


def _scale_up(subject: str, params: JSON, findings: Sequence[Finding]) -> tuple[JSON, JSON]:
    current = next((int(f.facts[k]) for f in findings for k in ("replicas", "current", "desired")
                    if f.facts.get(k) is not None), None)
    if current is None:
        return {}, params
    wanted = int(params["replicas"]) if "replicas" in params else max(
        math.ceil(current * float(params.get("factor", 2))), current + 1)
    return {"summary": f"would scale {subject} from {current} to {wanted} replicas "
                       "(before the policy's limits)",
            "replicas_from": current, "replicas_to": wanted}, params


_PREVIEWS: dict[str, Callable[[str, JSON, Sequence[Finding]], tuple[JSON, JSON]]] = {
    "kill-queries": _kill_queries, "rollback": _rollback, "scale-up": _scale_up}
