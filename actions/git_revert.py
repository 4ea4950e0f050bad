"""Rollback strategy `git-revert`: undo the offending deploy in git, where GitOps reads the truth.

The offending commits are those between the revision the controller last synced healthy (its
history) and the one it runs now, newest first (or `params.commits`, or the deploy branch's
head). Executing clones the deploy repository's remote into a temporary directory with
GitPython, reverts them in one commit whose message carries `Hemostat-Revert-Of:` trailers, and
pushes it to the deploy branch (policy `push: deploy-branch`) or to `hemostat/revert-<sha>` for
review (`push: review`). The trailers make it idempotent: a revert already on the branch is
found, not made twice. Credentials come by reference (deploy_repo.push_token as an HTTP bearer
header, deploy_repo.ssh_key as a key file), through git's environment, never argv or logs.
`undo` reverts the revert on the deploy branch (or deletes an unmerged review branch).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

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
    """The commits to revert, newest first: since the last healthy sync, else the head."""
    history = [h["revision"] for h in (facts or {}).get("history") or [] if h.get("revision")]
    current = (facts or {}).get("revision")
    with clone(url, branch, env) as repo:
        head = repo.head.commit.hexsha
        current = current or head
        earlier = [r for r in history if r != current]
        if earlier:
            listed = [str(s) for s in repo.git.rev_list(f"{earlier[-1]}..{current}", "--").split()]
            if listed:
                return listed
        return [current]


def find(repo: Any, ref: str, trailer: str, sha: str) -> str | None:
    out = repo.git.log(ref, f"--grep={trailer}: {sha}", "--format=%H", "-n", "1", "--")
    return out.strip() or None


def push_revert(url: str, branch: str, push_to: str, commits: list[str], env: dict[str, str]
                ) -> tuple[str, bool]:
    """(the revert commit, whether it was made now) on `push_to`, reverting `commits`."""
    import git

    with clone(url, branch, env) as repo:
        for ref in (f"origin/{push_to}", f"origin/{branch}"):
            with contextlib.suppress(git.GitCommandError):
                found = find(repo, ref, TRAILER, commits[0])
                if found:
                    return found, False
        for sha in commits:
            repo.git.revert("--no-commit", sha)
        shorts = ", ".join(c[:7] for c in commits)
        trailers = "\n".join(f"{TRAILER}: {c}" for c in commits)
        repo.git.commit("-m", f"Revert deploy {shorts} (Hemostat rollback)\n\n{trailers}")
        repo.git.push("origin", f"HEAD:refs/heads/{push_to}")
        return repo.head.commit.hexsha, True


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
