"""Action `kill-queries`: cancel, then if need be terminate, the PostgreSQL sessions behind a finding.

`proposal.params.reason` picks the sessions, in the subject's database (`postgres:<db>`):
`long_running_queries` (active longer than `long_query_seconds`, lock waiters excluded: they are
victims), `idle_in_transaction` (idle in a transaction longer than `idle_in_transaction_seconds`)
or `lock_contention` (the root blockers of sessions waiting longer than `lock_wait_seconds`).
Never touched: superusers, non-client backends (walsenders, autovacuum), `PostgresSpec.exclude_roles`,
and Hemostat's own sessions (`application_name`). The policy's `max_sessions` caps the plan: more
matches refuse the plan, unless `params.take_worst` asks for the worst N (longest-running, or
blocking the most sessions), which the plan then says. `params.pids`, when the proposal carries
them (the sessions its evidence named, shown to the approver), bounds the plan to those pids:
a session that matches now but was not shown is left alone and named in the plan.

`execute` cancels (`pg_cancel_backend`), waits up to `params.grace_s` (default 5) for the sessions
to move on, then terminates the survivors only if the policy's `allow_terminate` is true. A pid is
acted on only while it is still the same backend (`backend_start`) doing the same work (same
query, or same transaction): a pid that is gone, reused or has moved on counts as done, which
makes a second `execute` a no-op. Killed queries cannot be restored, so plans are irreversible.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from actions._pg import LIVE_SQL, SESSIONS_SQL, SIGNAL_ONE_SQL, SIGNAL_SQL, Db, Row, spec_of
from actions.base import Outcome
from agent.model import (
    Change,
    HemostatError,
    PermanentError,
    Plan,
    PostgresSpec,
    Proposal,
    TargetSpec,
    Thresholds,
)
from agent.model.context import ActionContext
from agent.model.redact import mask_query

REASONS = ("long_running_queries", "idle_in_transaction", "lock_contention")


# -- choosing sessions (pure) --------------------------------------------------------------------
def _excluded(s: Row, spec: PostgresSpec) -> str | None:
    if s["self"] or s["app"] == spec.application_name:
        return "Hemostat's own session"
    if s["backend_type"] != "client backend":
        return f"{s['backend_type']} backend"
    if s["superuser"]:
        return "superuser"
    if s["user"] in spec.exclude_roles:
        return "excluded role (exclude_roles)"
    return None


def root_blockers(pid: int, by_pid: dict[int, Row]) -> set[int]:
    """The pids at the top of `pid`'s blocking chains (blocked by nobody)."""
    stack, seen, roots = list(by_pid[pid]["blocked_by"]), {pid}, set()
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            above = (by_pid.get(current) or {}).get("blocked_by") or []
            stack.extend(above)
            if not above:
                roots.add(current)
    return roots


def _matching(rows: list[Row], reason: str, db: str, t: Thresholds) -> list[Row]:
    """Sessions of `db` behind `reason`, worst first, each with its `age_s` (and `blocks`)."""
    mine = [s for s in rows if s["db"] == db and s["query"] != "<insufficient privilege>"]
    if reason == "long_running_queries":
        hits = [{**s, "age_s": s["query_s"]} for s in mine if s["state"] == "active"
                and not s["blocked_by"] and (s["query_s"] or 0) > t.long_query_seconds]
    elif reason == "idle_in_transaction":
        hits = [{**s, "age_s": s["state_s"]} for s in mine if (s["state"] or "").startswith(
            "idle in transaction") and (s["state_s"] or 0) > t.idle_in_transaction_seconds]
    else:
        by_pid = {s["pid"]: s for s in rows}
        waiting = [s for s in mine if s["blocked_by"] and (s["wait_s"] or 0) > t.lock_wait_seconds]
        blocks: dict[int, int] = {}
        for s in waiting:
            for root in root_blockers(s["pid"], by_pid):
                blocks[root] = blocks.get(root, 0) + 1
        hits = [{**by_pid[r], "age_s": by_pid[r]["xact_s"], "blocks": n} for r, n in blocks.items()
                if r in by_pid]
    return sorted(hits, key=lambda s: (-s.get("blocks", 0), -(s["age_s"] or 0)))


def _cap(hits: list[Row], limit: Any, take_worst: bool, reason: str, db: str) -> list[Row]:
    if limit is None or len(hits) <= int(limit):
        return hits
    if not take_worst:
        pids = ", ".join(str(s["pid"]) for s in hits[:20])
        raise PermanentError(
            f"{len(hits)} sessions in {db} match {reason} ({pids}), more than the policy's "
            f"max_sessions={limit}; nothing planned (set params.take_worst=true to take the "
            f"{limit} worst)", code="limit_exceeded")
    return hits[:int(limit)]


def _entry(s: Row) -> Row:
    keys = ("pid", "user", "app", "state", "backend_start", "xact_start", "query_start", "age_s", "blocks")
    return {**{k: s.get(k) for k in keys}, "query": mask_query(s["query"])}


def _same_work(planned: Row, live: Row | None, reason: str) -> bool:
    """Still the same backend, doing what the plan was made for (so a reused pid is never hit)."""
    if live is None or live["backend_start"] != planned["backend_start"]:
        return False
    if reason == "long_running_queries":
        return bool(live["state"] == "active" and live["query_start"] == planned["query_start"])
    return bool(live["xact_start"] is not None and live["xact_start"] == planned["xact_start"])


TERMINATE_WAIT_S = 5.0  # how long a terminated backend may take to exit before we call it a survivor


def _params(params: dict[str, Any]) -> tuple[str, float, bool]:
    reason, grace = params.get("reason"), params.get("grace_s", 5)
    if reason not in REASONS:
        raise PermanentError(f"params.reason must be one of {', '.join(REASONS)}, got {reason!r}",
                             code="bad_params")
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise PermanentError(f"params.grace_s must be a number of seconds >= 0, got {grace!r}",
                             code="bad_params")
    return reason, float(grace), bool(params.get("take_worst", False))


def _pids(sessions: list[Row]) -> str:
    return ", ".join(str(s["pid"]) for s in sessions) or "none"


class KillQueriesAction:
    name = "kill-queries"
    summary = "cancel (then terminate, if policy allows) the PostgreSQL sessions behind a finding"
    mutates = True
    poll_s = 0.1  # how often execute looks whether signalled sessions have moved on

    def unavailable_reason(self, target: TargetSpec, subject: str) -> str | None:
        if target.postgres is None:
            return f"target {target.name} has no postgres configured"
        return None if subject.startswith("postgres:") else f"{subject} is not postgres:<database>"

    async def plan(self, proposal: Proposal, ctx: ActionContext) -> Plan:
        reason, grace, take_worst = _params(proposal.params)
        db, spec = proposal.subject.removeprefix("postgres:"), spec_of(ctx.target)
        cap, terminate = ctx.limits.get("max_sessions"), bool(ctx.limits.get("allow_terminate", False))
        async with Db(ctx) as conn:
            rows = await conn.rows(SESSIONS_SQL)
        hits = _matching(rows, reason, db, ctx.target.thresholds)
        skipped = [{"pid": s["pid"], "user": s["user"], "why": why}
                   for s in hits if (why := _excluded(s, spec))]
        chosen = [s for s in hits if _excluded(s, spec) is None]
        shown = proposal.params.get("pids")
        if shown is not None:  # only what the approver saw: a newcomer waits for its own proposal
            skipped += [{"pid": s["pid"], "user": s["user"], "why": "not among the proposal's pids"}
                        for s in chosen if s["pid"] not in shown]
            chosen = [s for s in chosen if s["pid"] in shown]
        picked = [_entry(s) for s in _cap(chosen, cap, take_worst, reason, db)]
        after = f"cancelled, terminated if still there after {grace:g}s" if terminate else "cancelled"
        return Plan(
            action=self.name, target=proposal.target, subject=proposal.subject,
            summary=_summary(picked, chosen, skipped, reason, db, grace, terminate, cap),
            changes=tuple(Change(f"{proposal.subject}/pid:{s['pid']}", "session",
                                 f"{s['user']} {s['state']} {s['age_s'] or 0:.0f}s: {s['query']}",
                                 after) for s in picked),
            touches=(proposal.subject, *(f"pid:{s['pid']}" for s in picked)),
            state={"db": db, "reason": reason, "grace_s": grace, "sessions": picked,
                   "skipped": skipped, "matched": len(chosen)},
            reversible=False,
            blast_radius={"sessions": len(picked), "matched": len(chosen), "max_sessions": cap,
                          "terminate": terminate})

    async def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        planned, reason = plan.state["sessions"], plan.state["reason"]
        if not planned:
            return Outcome(True, "nothing to do: the plan touches no session", {"changed": False})
        async with Db(ctx) as db:
            cancelled, refused = await self._signal(db, planned, reason, "pg_cancel_backend")
            survivors = await self._wait(db, cancelled, reason, plan.state["grace_s"])
            terminated: list[Row] = []
            if survivors and ctx.limits.get("allow_terminate", False):
                terminated, more = await self._signal(db, survivors, reason, "pg_terminate_backend")
                refused += more
                survivors = await self._wait(db, terminated, reason, TERMINATE_WAIT_S)
        facts = {"changed": bool(cancelled), "cancelled": [s["pid"] for s in cancelled],
                 "terminated": [s["pid"] for s in terminated], "survivors": [s["pid"] for s in survivors],
                 "refused": refused, "already_gone": [s["pid"] for s in planned if s not in cancelled
                                                      and s["pid"] not in refused]}
        return Outcome(not survivors and not refused, _report(facts, plan.state["db"]), facts)

    async def _signal(self, db: Db, sessions: list[Row], reason: str,
                      fn: str) -> tuple[list[Row], list[int]]:
        """Signal each session still doing the planned work; (signalled, refused pids)."""
        sent, refused = [], []
        for s in sessions:
            try:
                rows = await db.rows(SIGNAL_ONE_SQL.format(fn=fn), {
                    **s, "by_query": reason == "long_running_queries"})
            except HemostatError as e:
                if e.code != "pg_forbidden":
                    raise
                refused.append(s["pid"])
                continue
            if rows and rows[0]["sent"]:
                sent.append(s)
        return sent, refused

    async def _wait(self, db: Db, sessions: list[Row], reason: str, grace_s: float) -> list[Row]:
        """Wait up to `grace_s` for the sessions to move on; return those that have not."""
        deadline = time.monotonic() + grace_s
        while sessions:
            sessions = await _still(db, sessions, reason)
            if not sessions or time.monotonic() >= deadline:
                break
            await asyncio.sleep(self.poll_s)
        return sessions

    async def verify(self, plan: Plan, ctx: ActionContext) -> Outcome:
        planned, reason = plan.state["sessions"], plan.state["reason"]
        async with Db(ctx) as db:
            still = await _still(db, planned, reason)
        findings = [f for f in await ctx.reprobe(ctx.target, "pg-activity")
                    if (f.kind, f.subject) in ((reason, plan.subject), ("probe_failed", "pg-activity"))]
        facts = {"still_running": [s["pid"] for s in still], "findings": [f.summary for f in findings]}
        if still or findings:
            why = f"pids {_pids(still)} still running" if still else findings[0].summary
            return Outcome(False, f"not cleared in {plan.subject}: {why}", facts)
        return Outcome(True, f"{reason} cleared in {plan.subject}: planned pids {_pids(planned)} gone", facts)

    async def revert(self, plan: Plan, ctx: ActionContext) -> Outcome:
        return Outcome(False, "killed queries cannot be restored", {"reversible": False})

    async def dry_run(self, plan: Plan, ctx: ActionContext) -> Outcome:
        planned, reason = plan.state["sessions"], plan.state["reason"]
        async with Db(ctx) as db:
            still = await _still(db, planned, reason)
            grants = await db.rows(SIGNAL_SQL, (sorted({s["user"] for s in still}),))
        denied = sorted(g["user"] for g in grants if not g["allowed"])
        then = "then terminate survivors" if ctx.limits.get("allow_terminate", False) else "no terminate"
        facts = {"would_signal": [s["pid"] for s in still], "already_gone": len(planned) - len(still),
                 "not_permitted_users": denied}
        detail = (f"would cancel pids {_pids(still)} in {plan.state['db']} ({then}); "
                  f"{len(planned) - len(still)} already gone; nothing was killed")
        if denied:
            detail += f"; not permitted to signal {', '.join(denied)} (grant pg_signal_backend)"
        return Outcome(not denied, detail, facts)


async def _still(db: Db, sessions: list[Row], reason: str) -> list[Row]:
    live = {r["pid"]: r for r in await db.rows(LIVE_SQL, ([s["pid"] for s in sessions],))}
    return [s for s in sessions if _same_work(s, live.get(s["pid"]), reason)]


def _summary(picked: list[Row], chosen: list[Row], skipped: list[Row], reason: str, db: str,
             grace: float, terminate: bool, cap: Any) -> str:
    if not picked:
        text = f"no session in {db} matches {reason} now: nothing to do"
    else:
        then = f"terminate survivors after {grace:g}s" if terminate else "no terminate (allow_terminate off)"
        text = f"cancel {len(picked)} session(s) in {db} for {reason} (pids {_pids(picked)}), {then}"
    if len(picked) < len(chosen):
        text += f"; the {len(picked)} worst of {len(chosen)} matching (max_sessions={cap}, take_worst)"
    if skipped:
        text += "; left alone: " + ", ".join(f"pid {s['pid']} ({s['why']})" for s in skipped[:5])
    return text


def _report(facts: dict[str, Any], db: str) -> str:
    parts = [f"cancelled {_pids([{'pid': p} for p in facts['cancelled']])} in {db}"]
    if facts["terminated"]:
        parts.append(f"terminated {len(facts['terminated'])} that outlived the grace period")
    if facts["already_gone"]:
        parts.append(f"{len(facts['already_gone'])} already gone or moved on")
    if facts["survivors"]:
        parts.append(f"still running: {facts['survivors']} (terminate not allowed or not effective)")
    if facts["refused"]:
        parts.append(f"not permitted to signal {facts['refused']} (grant pg_signal_backend)")
    return "; ".join(parts)
