"""What plugins declare beyond their contract, checked and applied at start-up (called by
agent.diagnosis.wiring.build_app): each target's `plugins.<name>` settings against the plugin's
own `settings` model, and each plugin's decision-tree fragment added to the tree. The
declarations themselves are described in agent.model.plugin_api and docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.diagnosis.registry import Registered, Registry
from agent.model import ConfigError
from agent.model.config import Config
from policies.tree import Tree, with_fragment


def _plugins(registry: Registry) -> Iterator[Registered]:
    yield from registry.probes.values()
    yield from registry.actions.values()


def check_settings(config: Config, registry: Registry) -> None:
    """Every target's `plugins:` entry names an installed plugin and passes its model."""
    by_name = {r.name: r for r in _plugins(registry)}
    for i, target in enumerate(config.targets):
        for name, raw in target.plugins.items():
            where = f"targets.{i}.plugins.{name}"
            found = by_name.get(name)
            if found is None:
                known = ", ".join(sorted(n for n, r in by_name.items() if _model(r) is not None)) or "none"
                raise ConfigError("config", where, f"no installed probe or action named {name!r} "
                                  f"takes settings (plugins with settings: {known})")
            model = _model(found)
            if model is None:
                raise ConfigError("config", where, f"{name} ({found.origin}) takes no settings")
            try:
                model.model_validate(raw)
            except ValidationError as e:
                first = e.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ConfigError("config", f"{where}.{field}" if field else where,
                                  first["msg"].removeprefix("Value error, ")) from None


def _model(registered: Registered) -> type[BaseModel] | None:
    model = getattr(registered.plugin, "settings", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def add_fragments(tree: Tree, registry: Registry) -> Tree:
    """The tree with every plugin's fragment (its `tree` attribute: a path) added."""
    for registered in _plugins(registry):
        path: Any = getattr(registered.plugin, "tree", None)
        if path is not None:
            tree = with_fragment(tree, f"plugin {registered.name} ({registered.origin})", Path(path),
                                 registry.actions)
    return tree


def rbac_rules(registry: Registry) -> list[tuple[str, dict[str, Any]]]:
    """(plugin, PolicyRule) for every rule the installed plugins declare (their `rbac`)."""
    out = []
    for registered in _plugins(registry):
        for rule in getattr(registered.plugin, "rbac", None) or ():
            if not isinstance(rule, dict) or not {"apiGroups", "resources", "verbs"} <= set(rule):
                raise ConfigError(f"plugin {registered.name} ({registered.origin})", "rbac",
                                  "each rule must be a mapping with apiGroups, resources and verbs")
            out.append((registered.name, dict(rule)))
    return out
