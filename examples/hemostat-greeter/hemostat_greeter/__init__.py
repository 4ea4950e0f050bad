"""An example Hemostat plugin package (docs/plugins.md): the `greeting` probe notices a grumpy
greeter app, the `cheer-up` action cheers it up, and the tree fragment in `tree.yaml` connects
the two. Both read their settings from a target's `plugins.greeting:` in hemostat.yaml,
validated by `GreeterSettings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

TREE = Path(__file__).parent / "tree.yaml"

# What the plugin needs in each target's namespace; `hemostat plugins --rbac` turns the rules of
# every installed plugin into chart values. (This example reads nothing from Kubernetes; a
# plugin that read its app's ConfigMap would declare this.)
RBAC = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]


class GreeterSettings(BaseModel):
    """`targets[].plugins.greeting` in hemostat.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="the greeter's base URL")
    grumpy_words: list[str] = Field(default_factory=lambda: ["grumpy"], min_length=1)
    timeout_s: float = Field(5.0, gt=0, le=30)
