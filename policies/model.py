"""The policy file: mode, per-action rules and limits, cooldowns, rate limit, change freezes.

Validated at load; a malformed file or one naming an unknown action refuses to load with the
file, the field and the reason (`hemostat policy check FILE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.model import ConfigError
from agent.model.identity import AUTHENTICATED

Mode = Literal["observe", "propose", "auto", "dry-run"]
SourceName = Literal["kubernetes", "postgres", "slack", "asserted"]  # agent.model.identity.SOURCES
BUNDLED = Path(__file__).parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Approvers(_Strict):
    """Who may approve: identities from these sources, in at least one of these groups.

    `asserted` (a name given with --user, or the OS user) proves nothing about who typed it;
    list it only where that is acceptable (a demo, a staging drill).
    """

    sources: list[SourceName] = Field(default_factory=lambda: list(AUTHENTICATED),
                                      description="identity sources whose approvals count")
    groups: list[str] = Field(default_factory=list,
                              description="the approver must be in one of these; empty: any")


class RevertRule(_Strict):
    """Reverting an executed mitigation is a change too: its own approvals and approvers."""

    allowed: bool = True
    approvals: int = Field(1, ge=1, le=5, description="distinct approvers of the revert")
    approvers: Approvers | None = Field(None, description="default: the action's approvers")


class ActionRule(_Strict):
    """What the policy allows one action to do."""

    allowed: bool = True
    approvals: int = Field(1, ge=1, le=5, description="distinct approvers needed")
    auto: bool = Field(False, description="may run without approval when the mode is auto")
    cooldown_minutes: float | None = Field(None, ge=0, description="per target; default: policy's")
    limits: dict[str, int | float | bool | str] = Field(default_factory=dict)
    max_severity_for_auto: int = Field(
        4, ge=1, le=4, description="auto only for incidents at this SEV number or worse"
    )
    cooldown_override: bool = Field(
        False, description="a human may approve past the cooldown: `hemostat approve ID "
        "--override-cooldown --reason ...` (recorded with the reason)")
    approvers: Approvers | None = Field(None, description="default: the policy's approvers")
    revert: RevertRule = Field(default_factory=RevertRule)


class GitOpsRule(_Strict):
    """How mitigations treat an object a GitOps controller (Argo CD, Flux) manages.

    A live edit there is undone by self-heal or the next sync, so `rollback` goes through git
    (`git-revert`: revert the offending commits in the deploy repo), through Argo CD
    (`argocd`: suspend auto-sync, recorded, and sync the previous healthy revision), live only
    when `live_allowed` and auto-sync is suspended first (which needs `may_suspend_sync`), or
    not at all (`refuse`).
    """

    rollback: Literal["git-revert", "argocd", "live", "refuse"] = "git-revert"
    push: Literal["review", "deploy-branch"] = Field(
        "review", description="git-revert: push a review branch, or straight to the deploy branch")
    may_suspend_sync: bool = Field(False, description="may turn the controller's auto-sync off")
    live_allowed: bool = Field(False, description="live edits on a GitOps-managed object")
    sync_timeout_s: float = Field(300, gt=0, description="verify: how long to wait for the sync")

    def limits(self) -> dict[str, int | float | bool | str]:
        """The rule as verdict limits, which is how the action reads it."""
        return {f"gitops_{key}": value for key, value in self.model_dump().items()}


class RateLimit(_Strict):
    max_executions: int = Field(5, ge=1)
    per_minutes: float = Field(60, gt=0)


class Freeze(_Strict):
    """A change freeze: automatic execution stops; approvals still can (unless `deny`)."""

    start: datetime
    end: datetime
    reason: str = "change freeze"
    deny: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a timezone (e.g. 2026-12-24T00:00:00Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Policy(_Strict):
    version: Literal[1] = 1
    mode: Mode = "propose"
    cooldown_minutes: float = Field(15, ge=0)
    proposal_ttl_minutes: float = Field(30, gt=0)
    approval_ttl_minutes: float = Field(
        15, gt=0, description="an approved proposal not executed within this expires: "
        "an approval is for the situation it was given in")
    cooldown_after_failure: bool = Field(
        False, description="whether a failed or unverified execution starts the cooldown; by "
        "default only one that took effect (verified, or still running) does, so a failed "
        "mitigation never locks out its retry. Every attempt counts toward the rate limit.")
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    freezes: list[Freeze] = Field(default_factory=list)
    revert_on_failed_verify: bool = False
    approvers: Approvers = Field(default_factory=Approvers)
    actions: dict[str, ActionRule] = Field(default_factory=dict)
    gitops: dict[str, GitOpsRule] = Field(
        default_factory=dict, description="per target name, or '*' for every target")

    def rule(self, action: str) -> ActionRule | None:
        return self.actions.get(action)

    def gitops_rule(self, target: str) -> GitOpsRule:
        return self.gitops.get(target) or self.gitops.get("*") or GitOpsRule()

    def approvers_for(self, action: str, revert: bool = False) -> tuple[Approvers, str]:
        """The approvers rule that applies, and its field path (for messages)."""
        rule = self.rule(action)
        if rule is not None and revert and rule.revert.approvers is not None:
            return rule.revert.approvers, f"actions.{action}.revert.approvers"
        if rule is not None and rule.approvers is not None:
            return rule.approvers, f"actions.{action}.approvers"
        return self.approvers, "approvers"


def load_policy(path: Path, known_actions: Iterable[str] | None) -> Policy:
    """Read, validate and cross-check a policy file against the registered actions (None: skip
    the cross-check, for `approve`, which must not import every plugin to answer)."""

    data = _read(path)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(str(path), field, first["msg"].removeprefix("Value error, ")) from None
    if known_actions is None:
        return policy
    known = set(known_actions)
    for name in policy.actions:
        if name not in known:
            raise ConfigError(str(path), f"actions.{name}",
                              f"unknown action (known: {', '.join(sorted(known))})")
    return policy


def bundled_policy_path(name: str) -> Path:
    """`default`, `staging-drill` or `production` -> the file shipped in this package."""
    path = BUNDLED / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in BUNDLED.glob("*.yaml") if p.stem != "tree")
        raise ConfigError("policy", name, f"no bundled policy of that name (choices: {choices})")
    return path


def _read(path: Path) -> Any:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), where, f"not valid YAML: {getattr(e, 'problem', e)}") from e
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "must be a mapping at the top level")
    return data
