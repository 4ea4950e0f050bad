"""The mitigation decision tree as data (`tree.yaml`): branches in order, each matching on
finding kinds and proposing actions. The bundled tree encodes the playbook.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.model import ConfigError

BUNDLED_TREE = Path(__file__).parent / "tree.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    """One proposal a branch makes. `per` decides how many: one for the target, one per
    subject of the matching findings, or one per configured feature flag."""

    action: str
    per: Literal["target", "finding", "flag"] = "target"
    kinds: list[str] | None = Field(None, description="with per: finding, which findings")
    params: dict[str, Any] = Field(default_factory=dict)
    param_from_kind: str | None = Field(None, description="put the finding's kind in this param")


class Branch(_Strict):
    name: str
    title: str
    any: list[str] = Field(default_factory=list, description="matches if any of these kinds")
    all: list[str] = Field(default_factory=list, description="and all of these kinds")
    then: Literal["stop", "continue"] = "stop"
    propose: list[Step]

    @model_validator(mode="after")
    def _matches_something(self) -> Branch:
        if not self.any and not self.all:
            raise ValueError("a branch needs 'any' or 'all' finding kinds")
        return self

    def matches(self, kinds: set[str]) -> bool:
        any_ok = not self.any or bool(kinds.intersection(self.any))
        return any_ok and set(self.all) <= kinds


class Tree(_Strict):
    version: Literal[1] = 1
    branches: list[Branch]


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


def _check_actions(tree: Tree, path: Path, known: set[str]) -> None:
    for i, branch in enumerate(tree.branches):
        for j, step in enumerate(branch.propose):
            if step.action not in known:
                raise ConfigError(str(path), f"branches.{i}.propose.{j}.action",
                                  f"unknown action {step.action!r} (known: {', '.join(sorted(known))})")
