"""Probe `git-deploys`: the playbook's `git log --oneline -10` on the deploy branch.

Commits, merges and tags on the branch inside the window; a deploy that landed shortly before
the incident started becomes a `recent_deploy` finding, the rollback branch's evidence.
"""

from __future__ import annotations

import asyncio
import re
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
from agent.model.child_env import child_env
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
        commits = await _read_log(spec, since)
        return {"repo": str(spec.path), "branch": spec.branch, "since": since.isoformat(),
                "commits": commits}

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        window = timedelta(minutes=target.thresholds.recent_deploy_minutes)
        deploys = [c for c in observation.data.get("commits", [])
                   if now - window <= datetime.fromisoformat(c["at"]) <= now]
        # One finding per deploy (newest first): which of them could have caused the symptom
        # depends on when the symptom began, which only the decision tree sees.
        return [_recent_deploy(c, target, now, observation.probe) for c in deploys[:MAX_DEPLOYS]]


MAX_DEPLOYS = 5
DOCS = re.compile(r"(^|/)(docs?|\.github)/|\.(md|rst|txt|adoc)$"
                  r"|(^|/)(README|CHANGELOG|LICENSE|OWNERS|CODEOWNERS)[^/]*$", re.IGNORECASE)


def docs_only(files: list[str]) -> bool:
    """A change that touches only documentation cannot break a running app."""
    return bool(files) and all(DOCS.search(f) for f in files)


def _recent_deploy(commit: dict[str, Any], target: TargetSpec, now: datetime, probe: str) -> Finding:
    at = datetime.fromisoformat(commit["at"])
    minutes = (now - at).total_seconds() / 60
    files = commit.get("files")
    return Finding(
        kind="recent_deploy", subject=target.deployment or target.name, severity=Severity.SEV4,
        observed_at=now, probe=probe, onset=at, onset_from="commit time on the deploy branch",
        evidence=(f"{commit['short']} {commit['at'][11:16]} {commit['author']}: {commit['subject']}",
                  *([f"files: {', '.join(files[:8])}" + (" …" if len(files) > 8 else "")] if files else [])),
        summary=f"deploy {commit['short']} ({commit['subject']}) by {commit['author']} "
                f"landed {at:%H:%M}, {minutes:.0f} min before the incident",
        facts={"sha": commit["sha"], "short": commit["short"], "at": commit["at"],
               "author": commit["author"], "subject": commit["subject"],
               "minutes_before": round(minutes, 1), "tags": commit["tags"],
               "files": files, "docs_only": docs_only(files or []),
               **{k: commit[k] for k in ("image_changed", "previous_image", "image") if k in commit}},
    )


_SEP = "\x1f"
_RECORD = "\x1e"
_FORMAT = _RECORD + _SEP.join(("%H", "%an", "%ct", "%P", "%s"))
MAX_FILES = 50  # per commit: enough to tell a docs-only change from a code or image change


async def _read_log(spec: DeployRepoSpec, since: datetime) -> list[dict[str, Any]]:
    """`git log` on the branch, newest first, bounded by window and count, and the tags, as two
    `git` processes run at once. Plain `git`, not GitPython: importing GitPython runs `git
    version` and costs a one-shot `hemostat diagnose` about 80 ms before the first byte is read."""
    if not (spec.path / ".git").exists() and not (spec.path / "HEAD").is_file():
        raise PermanentError(f"{spec.path} is not a git repository", code="git_no_repo")
    # options first, then --end-of-options: the branch can only ever be a revision
    window = (f"--max-count={spec.max_commits}", f"--since={int(since.timestamp())}")
    log, tags, images = await asyncio.gather(
        _git(spec, "log", *window, "--name-only", f"--format={_FORMAT}",
             "--end-of-options", spec.branch, "--"),
        _git(spec, "for-each-ref", "refs/tags", "--format=%(objectname) %(*objectname) %(refname:short)"),
        _git(spec, "log", *window, "--no-ext-diff", "-p", "-U0", "-Gimage:",
             f"--format={_RECORD}%H", "--end-of-options", spec.branch, "--"))
    return [{**c, **image_changes(images).get(c["sha"], {})} for c in parse_log(log, tags)]


_IMAGE = re.compile(r"image:[ \t]*[\"']?([^\s\"'#]+)")


def _images(patch: str, sign: str) -> list[str]:
    """The images named on the lines a patch removes ("-") or adds ("+"), in order."""
    lines = (line for line in patch.splitlines() if line.startswith(sign) and not line.startswith(sign * 3))
    return [m.group(1) for line in lines if (m := _IMAGE.search(line))]


def image_changes(patches: str) -> dict[str, dict[str, Any]]:
    """sha -> {image_changed, previous_image, image} from `git log -p -U0 -G<image:>` output: a
    deploy that edits a manifest's `image:` line changed the container image."""
    out: dict[str, dict[str, Any]] = {}
    for record in patches.split(_RECORD):
        sha, _, body = record.strip("\n").partition("\n")
        removed = _images(body, "-")
        added = _images(body, "+")
        if sha and added and added != removed:
            out[sha] = {"image_changed": True, "previous_image": removed[0] if removed else None,
                        "image": added[0]}
    return out


_GIT_ENV = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


async def _git(spec: DeployRepoSpec, *args: str) -> str:
    """One read-only `git` command in the repository; its stdout. A cancelled probe (its
    timeout) kills the process rather than leaving it behind."""
    process = await asyncio.create_subprocess_exec(
        "git", "-C", str(spec.path), *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=child_env(_GIT_ENV))
    try:
        out, err = await process.communicate()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())
        raise
    if process.returncode != 0:
        message = err.decode(errors="replace")
        if "not a git repository" in message or "cannot change to" in message:
            raise PermanentError(f"{spec.path} is not a git repository", code="git_no_repo")
        if args[0] == "log" and ("unknown revision" in message or "bad revision" in message
                                 or "ambiguous argument" in message):
            raise PermanentError(f"branch {spec.branch!r} not found in {spec.path}", code="git_no_branch")
        raise PermanentError(f"git {args[0]} failed in {spec.path}: {truncate(message.strip(), 200)}",
                             code="git_failed")
    return out.decode(errors="replace")


def parse_log(log: str, tags: str = "") -> list[dict[str, Any]]:
    """`git log --name-only --format=<_FORMAT>` and `git for-each-ref refs/tags` output as commits."""
    by_sha = _tags_by_sha(tags)
    return [_commit_json(record, by_sha) for record in log.split(_RECORD) if record.strip()]


def _tags_by_sha(listing: str) -> dict[str, list[str]]:
    """Lightweight tags name the commit; annotated ones name the tag object, then the commit."""
    out: dict[str, list[str]] = {}
    for line in listing.splitlines():
        parts = line.split(" ")
        sha = parts[1] if len(parts) == 3 and parts[1] else parts[0]
        out.setdefault(sha, []).append(parts[-1])
    return out


def _commit_json(record: str, tags: dict[str, list[str]]) -> dict[str, Any]:
    """One `git log --name-only` record: the formatted line, then the files it touched."""
    line, *names = record.strip("\n").split("\n")
    sha, author, ts, parents, subject = line.split(_SEP, 4)
    files = [n for n in names if n]
    return {
        "sha": sha, "short": sha[:7], "at": datetime.fromtimestamp(int(ts), tz=UTC).isoformat(),
        "author": author, "subject": truncate(subject, 120),
        "merge": len(parents.split()) > 1, "tags": tags.get(sha, []),
        "files": files[:MAX_FILES], "files_total": len(files),
    }
