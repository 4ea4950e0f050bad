"""The mitigation decision tree as data (`tree.yaml`): branches, each matching on finding kinds
and proposing actions, plus the conditions that make it an honest cause — when (`before:
symptom`) and on what evidence (`evidence:`). The bundled tree encodes the playbook; the schema
is documented in docs/decision-tree.md. A bad tree refuses to load, naming the file and field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.model import ConfigError

BUNDLED_TREE = Path(__file__).parent / "tree.yaml"

SYMPTOM_KINDS = ["error_spike", "crash_loop", "oom_killed", "replicas_unavailable", "rollout_stuck",
                 "pods_pending", "latency_high", "slo_burn", "alert_condition"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    """One proposal a branch makes. `per` decides how many: one for the target, one per
    subject of the matching findings, or one per feature flag whose declaration matches the
    failing evidence (a flag that declares nothing is never proposed)."""

    action: str
    per: Literal["target", "finding", "flag"] = "target"
    kinds: list[str] | None = Field(None, description="with per: finding, which findings")
    params: dict[str, Any] = Field(default_factory=dict)
    param_from_kind: str | None = Field(None, description="put the finding's kind in this param")


class Evidence(_Strict):
    """One piece of evidence the branch weighs: held, it adds `weight` to the cause's rank;
    `required` and not held, the branch does not match (and says why). The checks:
    `logs_name_cause` (an error signature in the app's logs names the cause: a dependency's name
    or host, the database), `cause_precedes_symptom` (the cause's own evidence says it began
    before the symptom), `change_touches_runtime` (the change touched more than documentation),
    `change_changes_image` (the rollout changed a container image), `rollback_undoes_change`
    (rolling the workload back would undo the change: not a revert, not ConfigMap/Secret only)."""

    check: Literal["change_put_fault_there", "logs_name_cause", "cause_precedes_symptom",
                   "change_touches_runtime", "change_changes_image", "rollback_undoes_change"]
    weight: int = Field(1, ge=0, le=10)
    required: bool = False


class Branch(_Strict):
    name: str
    title: str
    any: list[str] = Field(default_factory=list, description="matches if any of these kinds")
    all: list[str] = Field(default_factory=list, description="and all of these kinds")
    cause: list[str] | None = Field(None, description="the kinds that are the cause (default: "
                                    "`all` when given, else `any`)")
    before: Literal["symptom"] | None = Field(None, description="the cause must begin before the "
                                              "symptom's onset (within the tree's tolerance)")
    evidence: list[Evidence] = Field(default_factory=list)
    then: Literal["stop", "continue"] = "stop"
    fallback: bool = Field(False, description="only when no other branch matched")
    propose: list[Step]

    @model_validator(mode="after")
    def _matches_something(self) -> Branch:
        if not self.any and not self.all:
            raise ValueError("a branch needs 'any' or 'all' finding kinds")
        if self.fallback and (self.before or self.evidence):
            raise ValueError("a fallback branch has no cause to time or weigh: drop 'before' and 'evidence'")
        stray = sorted(set(self.cause or ()) - set(self.any) - set(self.all))
        if stray:
            raise ValueError(f"cause kinds must be among 'any' or 'all': {', '.join(stray)}")
        return self

    def matches(self, kinds: set[str]) -> bool:
        any_ok = not self.any or bool(kinds.intersection(self.any))
        return any_ok and set(self.all) <= kinds

    @property
    def cause_kinds(self) -> list[str]:
        return self.cause if self.cause is not None else (self.all or self.any)


class Causality(_Strict):
    """How time decides what can be a cause. The tolerance absorbs clock skew between the
    deploy repo, the cluster and the app's log stamps, and a rollout's own minute or two."""

    tolerance_minutes: float = Field(2, ge=0, le=60)
    symptoms: list[str] = Field(default_factory=lambda: list(SYMPTOM_KINDS),
                                description="finding kinds that are the symptom a cause explains")


class Tree(_Strict):
    version: Literal[1] = 1
    causality: Causality = Field(default_factory=Causality)
    branches: list[Branch]

    @model_validator(mode="after")
    def _unique_names(self) -> Tree:
        names = [b.name for b in self.branches]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"branch names must be unique, repeated: {', '.join(dupes)}")
        return self


def load_tree(path: Path, known_actions: Iterable[str]) -> Tree:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(str(path), "", f"not valid YAML: {e}") from e
    try:
        tree = Tree.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(str(path), field, first["msg"].removeprefix("Value error, ")) from None
    _check_actions(tree, path, set(known_actions))
    return tree


class Fragment(_Strict):
    """A plugin's contribution to the tree: branches only (docs/plugins.md)."""

    branches: list[Branch]


def with_fragment(tree: Tree, source: str, path: Path, known_actions: Iterable[str]) -> Tree:
    """`tree` plus the branches of a plugin's fragment at `path`, placed before the tree's
    fallback branches (a fallback is for when nothing specific matched). `source` names the
    plugin in errors; a branch name already in the tree is refused."""
    try:
        data = yaml.safe_load(path.read_text())
        fragment = Fragment.model_validate(data)
    except OSError as e:
        raise ConfigError(f"{source}: {path}", "", f"cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: {path}", "", f"not valid YAML: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {path}", field, first["msg"].removeprefix("Value error, ")) from None
    taken = {b.name for b in tree.branches}
    for i, branch in enumerate(fragment.branches):
        if branch.name in taken:
            raise ConfigError(f"{source}: {path}", f"branches.{i}.name",
                              f"branch {branch.name!r} is already in the tree")
    _check_actions(Tree(branches=fragment.branches), Path(f"{source}: {path}"), set(known_actions))
    specific = [b for b in tree.branches if not b.fallback]
    fallback = [b for b in tree.branches if b.fallback]
    return tree.model_copy(update={"branches": [*specific, *fragment.branches, *fallback]})


def _check_actions(tree: Tree, path: Path, known: set[str]) -> None:
    for i, branch in enumerate(tree.branches):
        for j, step in enumerate(branch.propose):
            if step.action not in known:
                raise ConfigError(str(path), f"branches.{i}.propose.{j}.action",
                                  f"unknown action {step.action!r} (known: {', '.join(sorted(known))})")
