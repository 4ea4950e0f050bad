"""What a plugin probe or action may declare beyond its contract (probes.base, actions.base),
read by Hemostat at start-up (agent.diagnosis.plugins) and by `hemostat plugins --rbac`:

- `settings`: a pydantic model of the plugin's own settings, written under the target's
  `plugins.<plugin name>:` in hemostat.yaml; a bad value stops start-up with an error naming
  `targets.N.plugins.<name>.<field>`. Read them with `settings_of(target, self)`.
- `tree`: a path to a decision-tree fragment (`branches:` in tree.yaml's schema) shipped in the
  package, so a new finding kind reaches an action without replacing `tree.yaml`.
- `rbac`: the Kubernetes PolicyRules the plugin needs in each target's namespace, merged into
  the chart's values by `hemostat plugins --rbac`.

docs/plugins.md walks through an example package (examples/hemostat-hello).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent.model.targets import TargetSpec


def settings_of(target: TargetSpec, plugin: Any) -> Any:
    """`plugin`'s settings for `target`, as its `settings` model (already checked at start-up);
    its defaults when the target gives none."""
    model: type[BaseModel] | None = getattr(plugin, "settings", None)
    raw = target.plugins.get(str(getattr(plugin, "name", "")), {})
    if model is None:
        return raw
    return model.model_validate(raw)
