"""Rollback strategy `git-revert`: undo the offending deploy in git, where GitOps reads the truth.

The commits reverted are exactly those the evidence names (`params.commits`, the recent deploy's
sha), else those between the revision the controller last synced healthy (its history) and the
one it runs now, newest first; never the branch's head by default. Executing clones the deploy
repository's remote into a temporary directory with GitPython, reverts them on top of wherever
the branch is now (refused, in one sentence, when one is not on the branch, a later commit
changed the same lines (actions/_git_lines.py), or the revert conflicts) in one commit whose
message names the reverted subject, incident, proposal and approvers and carries
`Hemostat-Revert-Of:` trailers, and pushes it to the deploy branch (policy `push: deploy-branch`) or to
`hemostat/revert-<sha>` for review (`push: review`). The trailers make it idempotent: a revert
already on the branch is found, not made twice. Credentials come by reference
(deploy_repo.push_token as an HTTP bearer header, deploy_repo.ssh_key as a key file), through
git's environment, never argv or logs. `undo` reverts the revert on the deploy branch (or
deletes an unmerged review branch).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actions import _git_lines
from agent.model import DeployRepoSpec, PermanentError, TargetSpec
from agent.model.child_env import child_env

JSON = dict[str, Any]
TRAILER = "Hemostat-Revert-Of"
UNDO_TRAILER = "Hemostat-Undo-Of"
IDENTITY = {"GIT_AUTHOR_NAME": "Hemostat", "GIT_AUTHOR_EMAIL": "hemostat@localhost",
            "GIT_COMMITTER_NAME": "Hemostat", "GIT_COMMITTER_EMAIL": "hemostat@localhost"}


def remote_of(target: TargetSpec, facts: JSON | None) -> str:
    """Where the controller reads: the repo setting, the Application's source, or origin."""
    spec = _spec(target)
    if spec.remote:
        return spec.remote
    source = (facts or {}).get("source") or {}
    if source.get("repoURL"):
        return str(source["repoURL"])
    import git

    with git.Repo(spec.path) as repo:
        origin = next((r for r in repo.remotes if r.name == "origin"), None)
        return next(iter(origin.urls)) if origin is not None else str(spec.path)


def _spec(target: TargetSpec) -> DeployRepoSpec:
    if target.deploy_repo is None:
        raise PermanentError(f"target {target.name} has no deploy_repo: git-revert needs the "
                             "repository the GitOps controller reads", code="unconfigured")
    return target.deploy_repo


def git_env(spec: DeployRepoSpec) -> dict[str, str]:
    """git's environment: identity, no prompts, and the credentials resolved from references."""
    env = {**IDENTITY, "GIT_TERMINAL_PROMPT": "0"}
    if spec.push_token is not None:
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: Bearer {spec.push_token.resolve()}")
    if spec.ssh_key is not None:
        if spec.ssh_key.file is None:
            raise PermanentError("deploy_repo.ssh_key must be a {file: PATH}", code="unconfigured")
        env["GIT_SSH_COMMAND"] = f"ssh -i {spec.ssh_key.file} -o IdentitiesOnly=yes"
    return env


@contextlib.contextmanager
def clone(url: str, branch: str, env: dict[str, str]) -> Iterator[Any]:
    """A fresh clone of `url` at `branch` in a temporary directory, removed afterwards."""
    import git

    with tempfile.TemporaryDirectory(prefix="hemostat-revert-") as tmp:
        try:
            repo = git.Repo.clone_from(url, tmp, branch=branch, env=child_env(env))
        except git.GitCommandError as e:
            raise PermanentError(f"cannot clone the deploy repository's branch {branch!r}: "
                                 f"git exited {e.status}", code="git_clone_failed") from e
        with repo:
            repo.git.update_environment(**env)
            yield repo


def offending(url: str, branch: str, facts: JSON | None, env: dict[str, str]) -> list[str]:
    """The commits to revert, newest first, when the evidence named none: those the controller
    synced since its last healthy sync. Never the branch's head by default: a README commit that
    landed after approval is not the cause."""
    history = [h["revision"] for h in (facts or {}).get("history") or [] if h.get("revision")]
    current = (facts or {}).get("revision")
    earlier = [r for r in history if r != current]
    if current and earlier:
        with clone(url, branch, env) as repo:
            listed = [str(s) for s in repo.git.rev_list(f"{earlier[-1]}..{current}", "--").split()]
            if listed:
                return listed
    raise PermanentError("no commit to revert: the evidence names no deploy commit and the GitOps "
                         "controller has no earlier healthy sync; not guessing the branch's head",
                         code="git_revert_unnamed")


def find(repo: Any, ref: str, trailer: str, sha: str) -> str | None:
    out = repo.git.log(ref, f"--grep={trailer}: {sha}", "--format=%H", "-n", "1", "--")
    return out.strip() or None


@dataclass(frozen=True)
class Note:
    """Who and what a pushed revert answers for: named in its commit message."""

    incident: str | None = None
    proposal: str | None = None
    approvers: tuple[str, ...] = ()


def push_revert(url: str, branch: str, push_to: str, commits: list[str], env: dict[str, str],
                note: Note = Note()) -> tuple[str, bool]:
    """(the revert commit, whether it was made now) on `push_to`, reverting exactly `commits` on
    top of wherever the branch is now. Refused, with one sentence, when a commit is not on the
    branch, when a later commit changed the same lines, or when the revert conflicts."""
    import git

    with clone(url, branch, env) as repo:
        for ref in (f"origin/{push_to}", f"origin/{branch}"):
            with contextlib.suppress(git.GitCommandError):
                found = find(repo, ref, TRAILER, commits[0])
                if found:
                    return found, False
        subjects = [_check_revertible(repo, sha, branch, set(commits)) for sha in commits]
        for sha, subject in zip(commits, subjects, strict=True):
            try:
                repo.git.revert("--no-commit", sha)
            except git.GitCommandError as e:
                files = repo.git.diff("--name-only", "--diff-filter=U").split() or ["the tree"]
                with contextlib.suppress(git.GitCommandError):
                    repo.git.revert("--abort")
                raise PermanentError(f"not reverting {sha[:7]} (\"{subject}\"): it conflicts with later "
                                     f"changes on {branch} in {', '.join(files)}; revert it by hand",
                                     code="git_revert_conflict") from e
        repo.git.commit("-m", message(commits, subjects, note))
        try:
            repo.git.push("origin", f"HEAD:refs/heads/{push_to}")
        except git.GitCommandError as e:
            raise PermanentError(f"could not push the revert to {push_to}: git exited {e.status} "
                                 "(the branch moved again, or the push was refused)",
                                 code="git_push_failed") from e
        return repo.head.commit.hexsha, True


def _check_revertible(repo: Any, sha: str, branch: str, named: set[str]) -> str:
    """The commit's subject, once it is on the branch and no later commit rewrote its lines."""
    subject = _on(repo, sha, branch)
    overlap = _git_lines.later_overlap(repo, sha, named)
    if overlap is not None:
        path, later = overlap
        raise PermanentError(f"not reverting {sha[:7]} (\"{subject}\"): the later commit {later} "
                             f"changed the same lines of {path}; a revert would undo it too",
                             code="git_revert_overwritten")
    return subject


def _on(repo: Any, sha: str, branch: str) -> str:
    """The commit's subject; refused when it is not on the branch."""
    import git

    try:
        repo.git.merge_base("--is-ancestor", sha, "HEAD")
        return str(repo.git.log("-1", "--format=%s", sha, "--"))
    except git.GitCommandError as e:
        raise PermanentError(f"not reverting {sha[:7]}: it is not on branch {branch}",
                             code="git_revert_not_on_branch") from e


def message(commits: list[str], subjects: list[str], note: Note) -> str:
    """The revert's commit message: what it reverts and why, who approved, and the trailers."""
    title = f'Revert "{subjects[0]}"' + (f" and {len(commits) - 1} more" if len(commits) > 1 else "")
    lines = [f"{title} (Hemostat rollback)", ""]
    lines += [f'Reverts {c[:12]} "{s}", named by the evidence as the cause.'
              for c, s in zip(commits, subjects, strict=True)]
    lines += ["", f"Incident: {note.incident or 'none'}", f"Proposal: {note.proposal or 'none'}",
              f"Approved-by: {', '.join(note.approvers) or 'policy (auto)'}", ""]
    return "\n".join(lines + [f"{TRAILER}: {c}" for c in commits])


def images_of(url: str, branch: str, commits: list[str], env: dict[str, str]) -> JSON:
    """What the live object must show once the revert is synced: the images the reverted
    commits put in gone, the ones they took out back."""
    with clone(url, branch, env) as repo:
        gone: list[str] = []
        back: list[str] = []
        for sha in commits:
            _on(repo, sha, branch)
            removed, added = _git_lines.image_change(repo, sha)
            back += removed
            gone += added
        return {"images_gone": gone, "images_back": back}


def on_branch(url: str, branch: str, commit: str, env: dict[str, str]) -> str | None:
    """The revert commit for `commit` once it is on `branch` (merged), else None."""
    with clone(url, branch, env) as repo:
        return find(repo, f"origin/{branch}", TRAILER, commit)


def undo(url: str, branch: str, review: str, first: str, env: dict[str, str]) -> str:
    """Take the rollback back: revert the revert on `branch`, or drop the unmerged review branch."""
    import git

    with clone(url, branch, env) as repo:
        revert = find(repo, f"origin/{branch}", TRAILER, first)
        if revert is None:
            try:
                repo.git.push("origin", f":refs/heads/{review}")
            except git.GitCommandError:
                return "nothing to undo: no revert on the branch and no review branch"
            return f"deleted the unmerged review branch {review}"
        if find(repo, f"origin/{branch}", UNDO_TRAILER, revert):
            return f"revert {revert[:7]} already undone"
        repo.git.revert("--no-commit", revert)
        repo.git.commit("-m", f"Undo Hemostat rollback {revert[:7]}\n\n{UNDO_TRAILER}: {revert}")
        repo.git.push("origin", f"HEAD:refs/heads/{branch}")
        return f"reverted the revert {revert[:7]} as {repo.head.commit.hexsha[:7]}"
