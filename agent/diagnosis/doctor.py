"""`hemostat config check` and `hemostat doctor`: is this config going to work, asked before a pod
CrashLoops on it.

`config_problems` checks a config file offline and returns *every* problem with its path: YAML,
the schema (all of pydantic's errors, not the first), the policy and tree files, probe names, and
each secret reference (`{env: NAME}` set, `{file: PATH}` readable, neither read into the answer).
`reach` then asks, per target and probe, whether the backend answers (the probe collects once)
and whether the Kubernetes identity may do what the probe declares it needs (`kube_rules`, one
SelfSubjectAccessReview per verb, as `kubectl auth can-i`; `kube_rules_for(target)` when the probe
needs the cluster only for some targets), as rows of ok / failing and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.diagnosis.registry import Registry
from agent.diagnosis.runner import collect_all, probes_for
from agent.diagnosis.wiring import App
from agent.model import HemostatError, SecretRef, TargetSpec, truncate
from agent.model.config import Config, all_errors, anchor_paths, read_yaml
from agent.model.urls import UrlRef

Problem = tuple[str, str]  # (where: a dotted path, or a file; what is wrong)


@dataclass(frozen=True)
class Row:
    """One line of doctor's table: a target's probe, what was checked, and the answer."""

    target: str
    probe: str
    check: str
    ok: bool
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def config_problems(path: Path, registry: Registry | None = None) -> tuple[Config | None, list[Problem]]:
    """(the config when it validates, every problem found), without touching the network."""
    from agent.model import ConfigError

    try:
        data = read_yaml(path)
    except ConfigError as e:
        return None, [(e.field or "", e.reason)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [("", "must be a mapping at the top level")]
    try:
        config = Config.model_validate(anchor_paths(data, path.parent))
    except ValidationError as e:
        return None, all_errors(e)
    return config, _beyond_schema(config, registry or Registry.discover())


def _beyond_schema(config: Config, registry: Registry) -> list[Problem]:
    from policies.model import bundled_policy_path, load_policy
    from policies.tree import BUNDLED_TREE, load_tree

    problems: list[Problem] = []
    for key, load in (("policy", lambda: load_policy(config.policy or bundled_policy_path("default"),
                                                      registry.actions)),
                      ("tree", lambda: load_tree(config.tree or BUNDLED_TREE, registry.actions))):
        try:
            load()
        except HemostatError as e:
            problems.append((key, str(e)))
    for index, target in enumerate(config.targets):
        for position, name in enumerate(target.probes or ()):
            if name not in registry.probes:
                known = ", ".join(sorted(registry.probes))
                problems.append((f"targets.{index}.probes.{position}",
                                 f"no probe named {name!r} (known: {known})"))
    for where, ref in _references(config, ""):
        try:
            ref.resolve()
        except HemostatError as e:
            problems.append((where, str(e)))
    return problems


def _references(value: Any, where: str) -> Iterator[tuple[str, SecretRef | UrlRef]]:
    """Every secret or URL reference in the config, with its dotted path."""
    if isinstance(value, SecretRef | UrlRef):
        if not (isinstance(value, UrlRef) and value.inline is not None):
            yield where, value
        return
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _references(getattr(value, name), f"{where}.{name}".lstrip("."))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _references(item, f"{where}.{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, f"{where}.{key}")


async def reach(app: App, only: str | None = None) -> list[Row]:
    """Per target and probe: does its backend answer, and may we do what it needs?"""
    from agent.diagnosis.service import probe_context

    rows: list[Row] = []
    for target in app.config.targets:
        if only is not None and target.name != only:
            continue
        names = probes_for(target, app.registry)
        observations = await collect_all(target, app.registry, probe_context(app, ()), names)
        for obs in observations:
            why = f"answered in {obs.duration_s:.2f}s" if obs.ok else truncate(obs.error or "", 300)
            rows.append(Row(target.name, obs.probe, "reach", obs.ok, why))
            plugin = app.registry.probe(obs.probe)
            narrowed = getattr(plugin, "kube_rules_for", None)  # a probe may need the cluster only sometimes
            rules = narrowed(target) if narrowed is not None else getattr(plugin, "kube_rules", ())
            rows += await asyncio.to_thread(_can_i, app, target, obs.probe, rules)
    return rows


def _can_i(app: App, target: TargetSpec, probe: str, rules: Any) -> list[Row]:
    """One SelfSubjectAccessReview per (rule, verb) the probe declares, in the target's namespace."""
    if not rules:
        return []
    try:
        import kubernetes.client

        authz = kubernetes.client.AuthorizationV1Api(app.kube_provider()())
    except Exception as e:  # no kubeconfig, no in-cluster files: one row says so
        return [Row(target.name, probe, "kubernetes", False, f"no Kubernetes API: {truncate(str(e), 200)}")]
    rows = []
    for rule in rules:
        for verb in rule.verbs:
            attributes: dict[str, Any] = {"group": rule.group, "resource": rule.resource, "verb": verb}
            if rule.scope in ("namespace", "target"):
                attributes["namespace"] = target.namespace
            if rule.scope == "target" and target.deployment:
                attributes["name"] = target.deployment
            what = f"can-i {verb} {rule.resource}" + (f".{rule.group}" if rule.group else "")
            review = kubernetes.client.V1SelfSubjectAccessReview(
                spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=kubernetes.client.V1ResourceAttributes(**attributes)))
            try:
                status = authz.create_self_subject_access_review(review).status
            except Exception as e:
                rows.append(Row(target.name, probe, what, False, f"cannot ask: {truncate(str(e), 200)}"))
                continue
            allowed = bool(status is not None and status.allowed)
            denied = (status.reason if status else "") or f"RBAC does not grant it ({rule.why})"
            rows.append(Row(target.name, probe, what, allowed, rule.why if allowed else denied))
    return rows

