"""What is allowed and what is installed: `policy check`, `policy explain`, `plugins`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.cli.base import Ctx, emit_json, pass_ctx
from agent.cli.output import output_options

if TYPE_CHECKING:
    from agent.diagnosis.registry import Registry


@click.group()
def policy() -> None:
    """Check and explain policy files."""


@policy.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def policy_check(file: Path) -> None:
    """Validate FILE: schema, and every action it names is registered."""
    from agent.diagnosis.registry import Registry
    from policies.model import load_policy

    loaded = load_policy(file, Registry.discover().actions)
    click.echo(f"{file}: ok (mode {loaded.mode}, {len(loaded.actions)} actions)")


@click.command()
@output_options
@click.option("--rbac", is_flag=True, help="instead: the RBAC the plugins declare, as chart values "
              "(helm install -f FILE)")
def plugins(as_json: bool, rbac: bool) -> None:
    """The registered probes and actions, and where each came from."""
    from agent.cli import render
    from agent.diagnosis.registry import Registry

    registry = Registry.discover()
    if rbac:
        _rbac_values(registry)
        return
    rows = [("probe", r.name, r.plugin.summary, r.origin) for r in registry.probes.values()]
    rows += [("action", r.name, r.plugin.summary, r.origin) for r in registry.actions.values()]
    if as_json:
        emit_json([{"kind": k, "name": n, "summary": s, "origin": o} for k, n, s, o in rows])
    else:
        click.echo(render.table(rows, ("KIND", "NAME", "WHAT", "FROM")))


@policy.command("explain")
@click.argument("ref")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False),
              help="explain under this policy instead of the configured one")
@output_options
@pass_ctx
def policy_explain(obj: Ctx, ref: str, policy_file: str | None, as_json: bool) -> None:
    """How the policy decides proposal REF now: verdict, the rule that decided, the limits."""
    from agent.diagnosis.service import history_from
    from agent.model.context import utcnow

    app = obj.app(Path(policy_file) if policy_file else None)
    ledger = obj.ledger()
    record = ledger.proposal(ref)
    severity = ledger.incident(record.proposal.incident_id).severity if record.proposal.incident_id else 4
    verdict = app.gate.evaluate(record.proposal, history_from(ledger, app), utcnow(), severity)
    if as_json:
        emit_json({"proposal": record.id, "policy": str(app.policy_path), **verdict.to_json()})
        return
    rule = app.policy.rule(record.proposal.action)
    click.echo(f"{record.id} {record.proposal.action} {record.proposal.subject} under {app.policy_path}")
    click.echo(f"  mode      {app.policy.mode}")
    shown = _rule_text(rule.model_dump()) if rule else "none: the action is not in the policy"
    click.echo(f"  rule      {shown}")
    click.echo(f"  verdict   {verdict.decision}{' (dry-run)' if verdict.dry_run else ''}")
    click.echo(f"  because   {'; '.join(verdict.reasons)}")
    if verdict.limits:
        click.echo(f"  limits    {_rule_text(dict(verdict.limits))}")



def _rbac_values(registry: Registry) -> None:
    """The plugins' rules as `rbac.pluginRules` for the chart (docs/plugins.md)."""
    import yaml

    from agent.diagnosis.plugins import rbac_rules

    rules = rbac_rules(registry)
    click.echo("# RBAC the installed plugins declare, for the chart: helm upgrade ... -f THIS_FILE")
    click.echo("# " + (", ".join(sorted({name for name, _ in rules})) or "no plugin declares any"))
    values = {"rbac": {"pluginRules": [rule for _, rule in rules]}}
    click.echo(yaml.safe_dump(values, sort_keys=False), nl=False)


def _rule_text(rule: dict[str, Any]) -> str:
    """A policy rule as `approvals 1, limits: max_replicas 20, max_factor 3` (unset keys left out)."""
    parts = []
    for key, value in rule.items():
        if value in (None, {}, [], ()):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_value(v)}" for k, v in value.items() if v is not None)
            parts.append(f"{key.replace('_', ' ')}: {value}")
        else:
            parts.append(f"{key.replace('_', ' ')} {_value(value)}")
    return "; ".join(parts) or "defaults"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)
