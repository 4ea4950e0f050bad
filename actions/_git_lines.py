"""What a commit changed, line by line, for `git-revert` to decide whether it may revert it.

`later_overlap` answers "did a commit after `sha` on the branch change lines `sha` wrote?":
reverting `sha` then would undo (or fight) that later change, e.g. a hotfix on the same line,
so the revert is refused with the file and the later commit named. `image_change` reads the
container images a commit took out and put in, which is what verify checks on the live object.
Pure functions over `git` output; the repository is a GitPython `Repo`.
"""

from __future__ import annotations

import re
from typing import Any

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
IMAGE = re.compile(r"^([-+])\s*(?:-\s*)?image:\s*[\"']?([^\s\"']+)")
Span = tuple[int, int]  # first and last line, inclusive


def _span(start: str, count: str | None) -> Span:
    first, n = int(start), 1 if count is None else int(count)
    return (first, first + max(n, 1) - 1)  # an insertion point counts as the line it follows


def hunks(diff: str, side: str) -> dict[str, list[Span]]:
    """File -> line spans of a `git diff -U0` on the old (`-`) or new (`+`) side."""
    out: dict[str, list[Span]] = {}
    path = ""
    for line in diff.splitlines():
        if line.startswith("+++ ") or line.startswith("--- "):
            if (line[:3] == "+++") == (side == "+"):
                path = line[4:].removeprefix("b/" if side == "+" else "a/")
            continue
        match = HUNK.match(line)
        if match and path and path != "/dev/null":
            old, new = _span(match[1], match[2]), _span(match[3], match[4])
            out.setdefault(path, []).append(new if side == "+" else old)
    return out


def _touch(a: Span, b: Span) -> bool:
    return a[0] <= b[1] + 1 and b[0] <= a[1] + 1  # overlapping or adjacent: git would conflict too


def later_overlap(repo: Any, sha: str, skip: set[str]) -> tuple[str, str] | None:
    """(file, later commit) when a commit after `sha` on HEAD, other than those in `skip`,
    changed lines `sha` wrote (or next to them); else None."""
    later = [c for c in repo.git.rev_list(f"{sha}..HEAD", "--").split() if c not in skip]
    if not later:
        return None
    wrote = hunks(repo.git.show("-U0", "--format=", sha, "--"), "+")
    since = hunks(repo.git.diff("-U0", sha, "HEAD", "--", *wrote) if wrote else "", "-")
    for path, spans in wrote.items():
        if any(_touch(a, b) for a in spans for b in since.get(path, [])):
            touched = repo.git.log("--format=%h %s", "-n", "1", f"{sha}..HEAD", "--", path)
            return path, touched.strip()
    return None


def image_change(repo: Any, sha: str) -> tuple[list[str], list[str]]:
    """(images the commit took out, images it put in), from `image:` lines of its diff."""
    removed: list[str] = []
    added: list[str] = []
    for line in repo.git.show("-U0", "--format=", sha, "--").splitlines():
        if line.startswith(("+++", "---")):
            continue
        match = IMAGE.match(line)
        if match:
            (removed if match[1] == "-" else added).append(match[2])
    return [i for i in removed if i not in added], [i for i in added if i not in removed]
