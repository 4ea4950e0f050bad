"""`rollback` on a target deployed straight from its git repo (`gitops: git-revert`), no cluster.

Such a target runs what its deploy branch says (deploy-on-merge, or a controller Hemostat cannot
read), so there is no Deployment to read and no controller to ask whether it synced. Planning
picks the deploy to undo (`params.commits`, else the suspect deploy the diagnosis named, else the
branch head); executing and reverting are `git-revert`'s (actions/git_revert.py, through
actions/rollback_gitops.py). Verifying is by effect: the revert must be on the deploy branch, and
then the app's symptom probes (`app-metrics`, `prometheus`, whichever the target has) are
re-run until they no longer report an error spike, bounded by the policy's gitops sync timeout.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from actions import git_revert
from actions.base import Outcome
from agent.model import Change, Plan, Proposal, redact
from agent.model.context import ActionContext
from agent.model.gitops import rule_from_limits

JSON = dict[str, Any]
STILL_BAD = frozenset({"error_spike", "latency_high", "slo_burn"})
FACTS: JSON = {"tool": "git", "kind": "deploy-repo", "namespace": "", "name": "", "via": "gitops: git-revert",
               "found": True, "deployed_by": "git"}


def deployed_by_git(state: JSON) -> bool:
    return bool((state.get("gitops") or {}).get("deployed_by") == "git")


async def plan(proposal: Proposal, ctx: ActionContext) -> Plan:
    spec = git_revert._spec(ctx.target)
    env, rule = git_revert.git_env(spec), rule_from_limits(ctx.limits)
    url = await asyncio.to_thread(git_revert.remote_of, ctx.target, None)
    suspect = proposal.preview.get("change") if isinstance(proposal.preview, dict) else None
    commits = [str(c) for c in proposal.params.get("commits") or []] or ([str(suspect)] if suspect else [])
    if not commits:
        commits = await asyncio.to_thread(git_revert.offending, url, spec.branch, None, env)
    push_to = spec.branch if rule["gitops_push"] == "deploy-branch" else f"hemostat/revert-{commits[0][:12]}"
    shorts, where = ", ".join(c[:7] for c in commits), f"git {redact(url)}"
    return Plan(
        action="rollback", target=proposal.target, subject=proposal.subject,
        summary=f"revert deploy {shorts} in {where} and push to {push_to} "
                f"({ctx.target.name} runs what {spec.branch} says)",
        changes=(Change(where, f"branch {push_to}", f"{spec.branch} with {shorts}", f"revert of {shorts}"),),
        touches=(where,), blast_radius={"commits": len(commits)},
        state={"strategy": "git-revert", "url": url, "branch": spec.branch, "push_to": push_to,
               "commits": commits, "gitops": {**FACTS, "name": ctx.target.name},
               "sync_timeout_s": rule["gitops_sync_timeout_s"]})


def _still_bad(finding: Any) -> bool:
    """A symptom above its threshold. "No worse than its baseline" does not clear it: two scrapes'
    baseline is the app's lifetime ratio, which a long enough outage drags up to the outage's own."""
    small = finding.rate is not None and finding.rate.verdict == "small_sample"
    return finding.kind in STILL_BAD and not small


def symptom_probes(ctx: ActionContext) -> list[str]:
    target = ctx.target
    sources = (("app-metrics", target.metrics), ("prometheus", target.prometheus))
    probes = [name for name, has in sources if has]
    return [p for p in probes if target.probes is None or p in target.probes]


async def verify(plan: Plan, ctx: ActionContext, poll_s: float) -> Outcome:
    """On the branch, then the symptom gone: re-probe until no error spike, or time out."""
    state = plan.state
    env = git_revert.git_env(git_revert._spec(ctx.target))
    revert = await asyncio.to_thread(git_revert.on_branch, state["url"], state["branch"],
                                     state["commits"][0], env)
    if revert is None:
        return Outcome(False, f"revert waits for review on branch {state['push_to']}: merge it into "
                              f"{state['branch']} for it to be deployed", {"pending_review": True})
    probes = symptom_probes(ctx)
    if not probes:
        return Outcome(False, f"revert {revert[:7]} is on {state['branch']}, but {ctx.target.name} has "
                              "no metrics or prometheus to tell whether the errors stopped",
                       {"revision": revert, "unverifiable": True})
    polls = max(1, math.ceil(float(state["sync_timeout_s"]) / poll_s))
    still: list[Any] = []
    for poll in range(polls + 1):
        still = [f for p in probes for f in await ctx.reprobe(ctx.target, p) if _still_bad(f)]
        if not still or poll == polls:
            break
        await asyncio.sleep(poll_s)
    if still:
        return Outcome(False, f"revert {revert[:7]} is on {state['branch']}, but still: {still[0].summary}",
                       {"revision": revert, "findings": [f.kind for f in still]})
    below = f"{ctx.target.thresholds.error_rate:.0%}"
    return Outcome(True, f"revert {revert[:7]} is on {state['branch']} and {', '.join(probes)} no longer "
                         f"report an error spike (errors under {below} of requests)",
                   {"revision": revert, "reprobed": probes})
