"""Who approved: an identity from a system that authenticated the person, recorded with the approval.

Every identity source (Kubernetes TokenReview, a PostgreSQL login role, a signed Slack request, or
a name merely asserted on the command line) produces the same `Identity`; the ledger stores it with
each approval and the executor re-checks it against the policy. Identities are compared by their
normalised `subject`, so case, Unicode look-alikes and whitespace cannot make two people of one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Source = Literal["kubernetes", "postgres", "slack", "asserted"]
SOURCES: tuple[Source, ...] = ("kubernetes", "postgres", "slack", "asserted")
# Sources where a system checked who the person is; `asserted` is only a typed name.
AUTHENTICATED: tuple[Source, ...] = ("kubernetes", "postgres", "slack")


def normalize_subject(text: str) -> str:
    """The comparable form of a subject: NFKC, whitespace collapsed, case folded.

    Folding may merge two real accounts that differ only in case; that errs on the safe side
    (one approval fewer), never on counting one person twice.
    """
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


@dataclass(frozen=True)
class Identity:
    """A person (or the daemon) as one identity source vouches for them.

    `subject` is the stable identifier the source authenticates (Kubernetes username, PostgreSQL
    `session_user`, the Slack user's mapped name); it is stored normalised. `name` is for display,
    `uid` the source's own id when it has one, `groups` what the policy's `approvers.groups` match.
    """

    source: str
    subject: str
    name: str = ""
    groups: tuple[str, ...] = ()
    uid: str = ""

    def __post_init__(self) -> None:
        raw = " ".join(self.subject.split())
        object.__setattr__(self, "subject", normalize_subject(self.subject))
        object.__setattr__(self, "name", self.name.strip() or raw)
        object.__setattr__(self, "groups", tuple(self.groups))
        if not self.subject:
            raise ValueError("an identity needs a non-empty subject")

    @classmethod
    def asserted(cls, name: str) -> Identity:
        """A name typed with --user (or the OS user): trusted only where the policy says so."""
        return cls("asserted", name, name)

    def same_person(self, other: Identity | str) -> bool:
        theirs = other.subject if isinstance(other, Identity) else normalize_subject(other)
        return self.subject == theirs

    def describe(self) -> str:
        """`alice (kubernetes)`: who, and which system vouched for it."""
        return f"{self.name} ({self.source})"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "subject": self.subject, "name": self.name,
                "groups": list(self.groups), "uid": self.uid}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        return cls(source=data["source"], subject=data["subject"], name=data.get("name", ""),
                   groups=tuple(data.get("groups") or ()), uid=data.get("uid") or "")


@dataclass(frozen=True)
class Approval:
    """One recorded approval: who (as authenticated) and when. `kind` is `proposal` for
    approving a mitigation and `revert` for approving its undo."""

    identity: Identity
    at: datetime
    kind: str = "proposal"

    def to_json(self) -> dict[str, Any]:
        return {**self.identity.to_json(), "at": self.at.isoformat(), "kind": self.kind}
