"""`rollback` on an object a GitOps controller manages: the strategy the policy picks for the target.

A live template patch there is undone by self-heal or the next sync, and verify may pass before
it is. So when the Deployment's owner (actions/_gitops.py) auto-syncs, the target's GitOps rule
(policy `gitops:`, as `gitops_*` verdict limits) decides:

- `git-revert` (default): revert the offending commits in the deploy repo and push them to the
  deploy branch or a review branch (actions/git_revert.py); verify waits for the controller to
  report the revert's revision synced and healthy, then checks the effect on the live object
  (the images the reverted commits put in are gone, the ones they took out are back) and the
  symptom; revert reverts the revert.
- `argocd`: suspend auto-sync (the `automated` block is recorded and restored on revert), then
  sync the previous healthy history entry; refused when the policy forbids touching sync.
- `live`: refused unless the policy allows live edits *and* may suspend sync: auto-sync is
  suspended first (restored on revert), so the rollback cannot be silently undone.
- `refuse`: no GitOps strategy: refused, naming the owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from actions import _gitops, git_revert, rollback_git
from actions.base import Outcome
from agent.model import Change, PermanentError, Plan, Proposal, redact
from agent.model.context import ActionContext
from agent.model.gitops import rule_from_limits, summary, undoes_live_edits

JSON = dict[str, Any]
LivePlan = Callable[[], Awaitable[Plan]]
POLL_S = 2.0


def _refuse(why: str, code: str = "gitops_refused") -> PermanentError:
    return PermanentError(why, code=code)


async def plan(proposal: Proposal, ctx: ActionContext, deploy: JSON, live: LivePlan) -> Plan | None:
    """The GitOps plan, or None when nothing would undo a live rollback."""
    facts = await _gitops.owner_facts(ctx, deploy)
    if not undoes_live_edits(facts):
        return None
    assert facts is not None
    rule, who = rule_from_limits(ctx.limits), summary(proposal.subject, facts)
    strategy = rule["gitops_rollback"]
    if strategy == "git-revert":
        return await _git_plan(proposal, ctx, facts, rule, who)
    if not rule["gitops_may_suspend_sync"]:
        raise _refuse(f"{who}: a live rollback would be undone, and the policy's gitops rule for "
                      f"{proposal.target} ({strategy}) may not suspend sync")
    if strategy == "argocd":
        return await _argocd_plan(proposal, ctx, facts, who)
    if strategy == "live" and rule["gitops_live_allowed"]:
        base = await live()
        recorded = _gitops.recorded_sync(await _gitops.read_controller(ctx, facts), facts["kind"])
        return replace(base, summary=f"suspend auto-sync ({who}), then {base.summary}",
                       state={**base.state, "strategy": "live", "gitops": facts,
                              "recorded_sync": recorded})
    why = "" if strategy == "refuse" else " (live edits not allowed)"
    raise _refuse(f"{who}: a live rollback would be undone; the policy's gitops rule for "
                  f"{proposal.target} is {strategy}{why}")


async def _git_plan(proposal: Proposal, ctx: ActionContext, facts: JSON, rule: JSON, who: str) -> Plan:
    spec = git_revert._spec(ctx.target)
    env = git_revert.git_env(spec)
    url = await asyncio.to_thread(git_revert.remote_of, ctx.target, facts)
    commits = [str(c) for c in proposal.params.get("commits") or []] or await asyncio.to_thread(
        git_revert.offending, url, spec.branch, facts, env)  # the evidence's commits; never HEAD
    expect = await asyncio.to_thread(git_revert.images_of, url, spec.branch, commits, env)
    push_to = spec.branch if rule["gitops_push"] == "deploy-branch" else f"hemostat/revert-{commits[0][:12]}"
    shorts = ", ".join(c[:7] for c in commits)
    where = f"git {redact(url)}"
    return Plan(
        action="rollback", target=proposal.target, subject=proposal.subject,
        summary=f"revert deploy {shorts} in {where} and push to {push_to} ({who})",
        changes=(Change(where, f"branch {push_to}", f"{spec.branch} with {shorts}", f"revert of {shorts}"),),
        touches=(where,), blast_radius={"commits": len(commits)},
        state={"strategy": "git-revert", "url": url, "branch": spec.branch, "push_to": push_to,
               "commits": commits, "gitops": facts, "sync_timeout_s": rule["gitops_sync_timeout_s"],
               **expect})


async def _argocd_plan(proposal: Proposal, ctx: ActionContext, facts: JSON, who: str) -> Plan:
    if facts["kind"] != "Application":
        raise _refuse(f"{who}: the argocd strategy needs an Argo CD Application")
    current = facts.get("revision")
    earlier = [h["revision"] for h in facts.get("history") or [] if h.get("revision") not in (None, current)]
    if not earlier:
        raise _refuse(f"{who}: no earlier sync in its history to roll back to", "rollback_no_history")
    controller = await _gitops.read_controller(ctx, facts)
    app = f"application {facts['namespace']}/{facts['name']}"
    return Plan(
        action="rollback", target=proposal.target, subject=proposal.subject,
        summary=f"suspend auto-sync of {app} and sync revision {earlier[-1][:7]} "
                f"(was {str(current)[:7]}); auto-sync is restored on revert",
        changes=(Change(app, "spec.syncPolicy.automated", "on", "off (recorded)"),
                 Change(app, "status.sync.revision", current, earlier[-1])),
        touches=(app,), blast_radius={"applications": 1},
        state={"strategy": "argocd", "gitops": facts, "from_revision": current, "to_revision": earlier[-1],
               "recorded_sync": _gitops.recorded_sync(controller, facts["kind"]),
               "sync_timeout_s": rule_from_limits(ctx.limits)["gitops_sync_timeout_s"]})


async def execute(plan: Plan, ctx: ActionContext, live: Callable[[], Awaitable[Outcome]]) -> Outcome:
    state, facts = plan.state, plan.state["gitops"]
    if state["strategy"] == "git-revert":
        env = git_revert.git_env(git_revert._spec(ctx.target))
        given = ctx.provenance
        note = git_revert.Note(given.get("incident"), given.get("proposal"),
                               tuple(given.get("approvers") or ()))
        sha, made = await asyncio.to_thread(git_revert.push_revert, state["url"], state["branch"],
                                            state["push_to"], state["commits"], env, note)
        done = "pushed" if made else "already on the branch"
        return Outcome(True, f"revert {sha[:7]} of {', '.join(c[:7] for c in state['commits'])} "
                             f"{done}: {state['push_to']}", {"changed": made, "revert": sha})
    suspended = await _gitops.suspend_sync(ctx, facts)
    if state["strategy"] == "live":
        outcome = await live()
        return replace(outcome, facts={**outcome.facts, "sync_suspended": suspended})
    await _gitops.sync_revision(ctx, facts, state["to_revision"])
    return Outcome(True, f"auto-sync suspended, sync of revision {state['to_revision'][:7]} requested",
                   {"changed": True, "sync_suspended": suspended})


async def verify(plan: Plan, ctx: ActionContext, still_bad: Callable[[], Awaitable[Outcome | None]],
                 live: Callable[[], Awaitable[Outcome]], poll_s: float = POLL_S,
                 images: Callable[[], Awaitable[list[str]]] | None = None) -> Outcome:
    state, facts = plan.state, plan.state["gitops"]
    if state["strategy"] == "live":
        return await live()
    if rollback_git.deployed_by_git(state):  # no controller to ask: verified by the app's errors
        return await rollback_git.verify(plan, ctx, poll_s)
    wanted = state.get("to_revision")
    if state["strategy"] == "git-revert":
        env = git_revert.git_env(git_revert._spec(ctx.target))
        wanted = await asyncio.to_thread(git_revert.on_branch, state["url"], state["branch"],
                                         state["commits"][0], env)
        if wanted is None:
            return Outcome(False, f"revert waits for review on branch {state['push_to']}: merge it "
                                  f"into {state['branch']} for {facts['tool']} to sync it",
                           {"pending_review": True})
    waiting = await _gitops.wait_synced(ctx, facts, lambda rev: rev == wanted,
                                        float(state["sync_timeout_s"]), poll_s)
    if waiting is not None:
        return Outcome(False, f"{facts['tool']} did not report {str(wanted)[:7]} synced and healthy: "
                              f"{waiting}", {"waiting": waiting})
    wrong = await _live_images_wrong(state, images) if images is not None else None
    if wrong is not None:  # "synced and healthy" is not the effect: the bad change must be gone
        return Outcome(False, f"{facts['tool']} synced {str(wanted)[:7]}, but {wrong}",
                       {"revision": wanted, "effect": "missing"})
    bad = await still_bad()
    return bad or Outcome(True, f"{facts['tool']} synced {str(wanted)[:7]}; the live workload runs "
                                f"{_images_said(state)} and is healthy", {"revision": wanted})


async def _live_images_wrong(state: JSON, images: Callable[[], Awaitable[list[str]]]) -> str | None:
    """Why the live object does not show the plan's effect, or None when it does."""
    live = await images()
    still = [i for i in state.get("images_gone") or [] if i in live]
    if still:
        return f"the live workload still runs {', '.join(still)}, the image the reverted change put in"
    missing = [i for i in state.get("images_back") or [] if i not in live]
    if missing:
        return f"the live workload does not run {', '.join(missing)}, the image the revert restores " \
               f"(it runs {', '.join(live) or 'nothing'})"
    return None


def _images_said(state: JSON) -> str:
    back = state.get("images_back") or []
    return ", ".join(back) if back else "the reverted spec"


async def revert(plan: Plan, ctx: ActionContext, live: Callable[[], Awaitable[Outcome]]) -> Outcome:
    state, facts = plan.state, plan.state["gitops"]
    if state["strategy"] == "git-revert":
        env = git_revert.git_env(git_revert._spec(ctx.target))
        done = await asyncio.to_thread(git_revert.undo, state["url"], state["branch"], state["push_to"],
                                       state["commits"][0], env)
        return Outcome(True, done, {"changed": True})
    outcome = await live() if state["strategy"] == "live" else None
    restored = await _gitops.restore_sync(ctx, facts, state["recorded_sync"])
    detail = f"auto-sync of {facts['kind'].lower()} {facts['namespace']}/{facts['name']} " \
             f"{'restored' if restored else 'was already as recorded'}"
    return Outcome(True, f"{outcome.detail}; {detail}" if outcome else detail, {"changed": True})
