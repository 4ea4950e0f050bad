"""Which probes and actions exist: discovered from the `hemostat.probes` and `hemostat.actions`
entry-point groups (Hemostat's own included), or registered directly in tests.

A plugin that fails to import stops start-up with an error naming the entry point and the
cause: a mitigation that silently disappeared would be found at 3 AM, not now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from agent.model import ConfigError

PROBE_GROUP = "hemostat.probes"
ACTION_GROUP = "hemostat.actions"


@dataclass(frozen=True)
class Registered:
    name: str
    source: str | EntryPoint  # the entry point it was loaded from, or "registered in code"
    plugin: Any

    @property
    def origin(self) -> str:
        """"module:attr (distribution version)", worked out only when shown: reading each
        plugin's distribution metadata cost every start-up a third of a second."""
        return _origin(self.source) if isinstance(self.source, EntryPoint) else self.source


@dataclass
class Registry:
    """Probes and actions by name. An instance, never shared state: each test builds its own."""

    probes: dict[str, Registered] = field(default_factory=dict)
    actions: dict[str, Registered] = field(default_factory=dict)

    def add_probe(self, probe: Any, origin: str | EntryPoint = "registered in code") -> None:
        _add(self.probes, "probe", probe, origin)

    def add_action(self, action: Any, origin: str | EntryPoint = "registered in code") -> None:
        _add(self.actions, "action", action, origin)

    def probe(self, name: str) -> Any:
        return _get(self.probes, "probe", name)

    def action(self, name: str) -> Any:
        return _get(self.actions, "action", name)

    @classmethod
    def discover(cls) -> Registry:
        """Load every installed plugin; raise ConfigError on the first that fails to load."""
        registry, installed = cls(), entry_points()  # one scan of the installed distributions
        for ep in installed.select(group=PROBE_GROUP):
            registry.add_probe(_load(ep), ep)
        for ep in installed.select(group=ACTION_GROUP):
            registry.add_action(_load(ep), ep)
        return registry


def _add(table: dict[str, Registered], kind: str, plugin: Any, origin: str | EntryPoint) -> None:
    name = getattr(plugin, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(_where(origin), "name", f"{kind} has no name")
    if name in table:
        raise ConfigError(_where(origin), "name",
                          f"{kind} {name!r} is already registered by {table[name].origin}")
    table[name] = Registered(name, origin, plugin)


def _where(origin: str | EntryPoint) -> str:
    return _origin(origin) if isinstance(origin, EntryPoint) else origin


def _get(table: dict[str, Registered], kind: str, name: str) -> Any:
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise ConfigError(f"{kind}s", name, f"unknown {kind} (known: {known})")
    return table[name].plugin


def _load(ep: EntryPoint) -> Any:
    try:
        factory = ep.load()
        return factory() if isinstance(factory, type) else factory
    except Exception as e:
        raise ConfigError(
            f"plugin {ep.name!r} ({ep.value}) in group {ep.group}", "",
            f"failed to load: {type(e).__name__}: {e}",
        ) from e


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist
    where = f" ({dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.value}{where}"
