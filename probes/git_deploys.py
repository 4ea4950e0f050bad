"""Probe `git-deploys`: the playbook's `git log --oneline -10` on the deploy branch.

Commits, merges and tags on the branch inside the window; a deploy that landed shortly before
the incident started becomes a `recent_deploy` finding, the rollback branch's evidence.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.model import (
    DeployRepoSpec,
    Finding,
    Observation,
    PermanentError,
    Severity,
    TargetSpec,
    truncate,
)
from agent.model.context import ProbeContext


class GitDeploysProbe:
    name = "git-deploys"
    summary = "recent deploys: commits, merges and tags on the deploy branch (git log)"

    def applies_to(self, target: TargetSpec) -> bool:
        return target.deploy_repo is not None

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        spec = target.deploy_repo
        if spec is None:
            raise PermanentError("target has no deploy_repo configured", code="unconfigured")
        since = ctx.now() - timedelta(minutes=spec.window_minutes)
        commits = await asyncio.to_thread(_read_log, spec, since)
        return {"repo": str(spec.path), "branch": spec.branch, "since": since.isoformat(),
                "commits": commits}

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        window = timedelta(minutes=target.thresholds.recent_deploy_minutes)
        deploys = [c for c in observation.data.get("commits", [])
                   if now - window <= datetime.fromisoformat(c["at"]) <= now]
        if not deploys:
            return []
        latest = deploys[0]  # git log order: newest first
        return [_recent_deploy(latest, deploys, target, now, observation.probe)]


def _recent_deploy(latest: dict[str, Any], deploys: list[dict[str, Any]], target: TargetSpec,
                   now: datetime, probe: str) -> Finding:
    at = datetime.fromisoformat(latest["at"])
    minutes = (now - at).total_seconds() / 60
    evidence = tuple(f"{c['short']} {c['at'][11:16]} {c['author']}: {c['subject']}" for c in deploys[:5])
    return Finding(
        kind="recent_deploy", subject=target.deployment or target.name, severity=Severity.SEV4,
        observed_at=now, probe=probe, evidence=evidence,
        summary=f"deploy {latest['short']} ({latest['subject']}) by {latest['author']} "
                f"at {at:%H:%M}, {minutes:.0f} min before the incident",
        facts={"sha": latest["sha"], "short": latest["short"], "at": latest["at"],
               "author": latest["author"], "subject": latest["subject"],
               "minutes_before": round(minutes, 1), "tags": latest["tags"],
               "deploys_in_window": len(deploys)},
    )


_SEP = "\x1f"
_FORMAT = _SEP.join(("%H", "%an", "%ct", "%P", "%s"))


def _read_log(spec: DeployRepoSpec, since: datetime) -> list[dict[str, Any]]:
    """`git log` on the branch, newest first, bounded by window and count (one git process)."""
    import git  # GitPython: imported only when the probe runs

    try:
        repo = git.Repo(spec.path)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError) as e:
        raise PermanentError(f"{spec.path} is not a git repository", code="git_no_repo") from e
    with repo:
        try:
            # options first, then --end-of-options: the branch can only ever be a revision
            out = repo.git.log(f"--max-count={spec.max_commits}", f"--since={int(since.timestamp())}",
                               f"--format={_FORMAT}", "--end-of-options", spec.branch, "--")
            tags = repo.git.for_each_ref("refs/tags", format="%(objectname) %(*objectname) %(refname:short)")
        except git.GitCommandError as e:
            raise PermanentError(f"branch {spec.branch!r} not found in {spec.path}",
                                 code="git_no_branch") from e
    by_sha = _tags_by_sha(tags)
    return [_commit_json(line, by_sha) for line in out.splitlines() if line]


def _tags_by_sha(listing: str) -> dict[str, list[str]]:
    """Lightweight tags name the commit; annotated ones name the tag object, then the commit."""
    out: dict[str, list[str]] = {}
    for line in listing.splitlines():
        parts = line.split(" ")
        sha = parts[1] if len(parts) == 3 and parts[1] else parts[0]
        out.setdefault(sha, []).append(parts[-1])
    return out


def _commit_json(line: str, tags: dict[str, list[str]]) -> dict[str, Any]:
    sha, author, ts, parents, subject = line.split(_SEP, 4)
    return {
        "sha": sha, "short": sha[:7], "at": datetime.fromtimestamp(int(ts), tz=UTC).isoformat(),
        "author": author, "subject": truncate(subject, 120),
        "merge": len(parents.split()) > 1, "tags": tags.get(sha, []),
    }
