"""Incident-handling commands: `incidents`, `ack`, `resolve`, `assign`, `revert`, `status` and
`postmortem`. Put on the `hemostat` group by agent.cli.main."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import click

from agent.cli.base import Ctx, emit_json, pass_ctx, server_options
from agent.cli.output import current, output_options
from agent.cli.reading import Source, as_json_text, filter_options, filters, read_options
from agent.cli.reading import show as show_changes

ROLES = ("incident_commander", "communications", "technical_lead")


@click.command()
@click.option("--open", "open_only", is_flag=True, help="only incidents not resolved")
@click.option("--unmatched", is_flag=True, help="instead: alerts that matched no configured target")
@output_options
@filter_options
@read_options
@pass_ctx
def incidents(obj: Ctx, open_only: bool, unmatched: bool, as_json: bool, target: str | None,
              severity: str | None, since: str | None, server: str | None, kubeconfig: str | None,
              kube_context: str | None, watch: bool, interval: float) -> None:
    """Incidents, newest first (with --unmatched: the alerts no target claimed); --server reads
    them through the daemon."""
    from agent.cli import render

    if unmatched:
        if server:
            raise click.UsageError("--unmatched reads the ledger itself; it is not offered with --server")
        _unmatched(obj, as_json)
        return
    source, only = Source(obj, server, kubeconfig, kube_context), filters(target, severity, since, open_only)

    def text() -> str:
        records = source.incidents(only)
        if as_json:
            return as_json_text([r.to_json() for r in records])
        return render.incidents(records, wide=current() == "wide")

    show_changes(text, watch, interval)


def _unmatched(obj: Ctx, as_json: bool) -> None:
    from agent.cli import render

    rows = [(e.at, a) for e in obj.ledger().events() if e.type == "alert_unmatched"
            for a in e.data.get("alerts", ())]
    if as_json:
        emit_json([{"at": at.isoformat(), **alert} for at, alert in rows])
        return
    click.echo(render.table([(render.hhmm(at), a.get("labels", {}).get("alertname", "?"), a.get("status", ""),
                              ", ".join(f"{k}={v}" for k, v in sorted(a.get("labels", {}).items())
                                        if k != "alertname")[:100]) for at, a in rows],
                            ("RECEIVED", "ALERT", "STATUS", "LABELS")) if rows else "no unmatched alerts")


def _set_status(obj: Ctx, ref: str, status: str, note: str | None, *,
                only_from: tuple[str, ...] = ()) -> None:
    """Move INCIDENT to `status`; no event at all when it is there already (or, with
    `only_from`, when it is past the point where this move makes sense)."""
    from agent.model.context import utcnow

    ledger = obj.ledger()
    record = ledger.incident(ref if ref.startswith("inc-") else f"inc-{ref}")
    if record.status == status or (only_from and record.status not in only_from):
        click.echo(f"{record.id}: already {record.status}")
        return
    ledger.set_incident_status(record.id, status, obj.user, utcnow(), data={"note": note} if note else None)
    click.echo(f"{record.id}: {status} by {obj.user}")


@click.command()
@click.argument("incident")
@click.option("--note", help="what you are doing about it")
@pass_ctx
def ack(obj: Ctx, incident: str, note: str | None) -> None:
    """Acknowledge INCIDENT: a human is investigating (an incident already further along keeps
    its status; the acknowledgement is recorded either way)."""
    from agent.model.context import utcnow

    ledger = obj.ledger()
    record = ledger.incident(incident if incident.startswith("inc-") else f"inc-{incident}")
    ledger.append("acknowledged", obj.user, utcnow(), incident_id=record.id, data={"note": note or ""})
    _set_status(obj, record.id, "investigating", note or "acknowledged", only_from=("opened", "triaged"))


@click.command()
@click.argument("incident")
@click.option("--note", help="how it ended")
@pass_ctx
def resolve(obj: Ctx, incident: str, note: str | None) -> None:
    """Mark INCIDENT resolved."""
    _set_status(obj, incident, "resolved", note)


@click.command()
@click.argument("incident")
@click.argument("role", type=click.Choice(ROLES))
@click.argument("name")
@pass_ctx
def assign(obj: Ctx, incident: str, role: Literal["incident_commander"], name: str) -> None:
    """Assign ROLE of INCIDENT to NAME (incident commander, communications, technical lead).
    Defaults come from `roles:` in hemostat.yaml; status updates name the commander."""
    from agent.model.context import utcnow

    ledger = obj.ledger()
    record = ledger.incident(incident)
    ledger.append("role_assigned", obj.user, utcnow(), incident_id=record.id,
                  data={"role": role, "name": name})
    click.echo(f"{record.id}: {role.replace('_', ' ')} is {name}")


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="why it is being reverted")
@output_options
@click.option("--server", envvar="HEMOSTAT_SERVER", metavar="URL",
              help="ask the daemon's approval API, as your Kubernetes identity (env HEMOSTAT_SERVER)")
@click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
              help="kubeconfig whose credential is sent to --server (env KUBECONFIG)")
@click.option("--context", "kube_context", help="kubeconfig context (default: the current one)")
@pass_ctx
def revert(obj: Ctx, ref: str, reason: str, as_json: bool, server: str | None,
           kubeconfig: str | None, kube_context: str | None) -> None:
    """Revert an executed proposal (scale back, roll forward, close the breaker, flag on).

    Goes through the policy: your request is one approval of the revert (under --user, so the
    policy must trust `asserted`); a dry-run execution has nothing to revert."""
    import asyncio

    from agent.execution.executor import Executor

    if server:
        from agent.cli.approval_client import revert_remote

        answer = revert_remote(server, ref, reason, kubeconfig, kube_context)
        emit_json(answer) if as_json else click.echo(answer["message"])
        return
    executor = Executor(obj.app(), obj.ledger(), obj.user)
    outcome = asyncio.run(executor.revert(ref, reason, by=obj.identity))
    pending = bool(outcome.facts.get("pending"))
    if as_json:
        emit_json(outcome.to_json())
    elif pending:
        click.echo(f"{ref}: {outcome.detail}")
    else:
        click.echo(f"{ref}: {'reverted' if outcome.ok else 'revert FAILED'}: {outcome.detail}")
    if not outcome.ok and not pending:
        raise SystemExit(1)


@click.command()
@click.argument("incident")
@click.option("--record", type=click.Path(path_type=Path, dir_okay=False),
              help="also save the incident's observations as a drill scenario")
@click.option("--output", "-o", metavar="FILE|json|yaml",
              help="write the Markdown to FILE instead of stdout; json or yaml: the post-mortem's "
                   "facts as one document on stdout")
@server_options("read it through the daemon's API as your Kubernetes identity")
@pass_ctx
def postmortem(obj: Ctx, incident: str, record: Path | None, output: str | None, server: str | None,
               kubeconfig: str | None, kube_context: str | None) -> None:
    """Draft the post-mortem of INCIDENT (Markdown) from its ledger timeline."""
    if record is not None:
        if server:
            raise click.UsageError("--record reads the ledger itself; it is not offered with --server")
        ledger = obj.ledger()
        found = ledger.incident(incident)
        _record_incident(obj, record, found, ledger.events(incident_id=found.id))
    if output in ("json", "yaml"):
        if server:
            raise click.UsageError("-o json|yaml reads the ledger itself; with --server the daemon "
                                   "gives the Markdown")
        _postmortem_document(obj, incident, output)
        return
    text = Source(obj, server, kubeconfig, kube_context).postmortem(incident)
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text)
        click.echo(f"wrote post-mortem to {output}", err=True)


def _postmortem_document(obj: Ctx, incident: str, fmt: str) -> None:
    """The post-mortem's facts (the incident, its events, the Markdown) as one document."""
    from agent.cli.output import emit
    from agent.incidents.postmortem import render_postmortem

    ledger = obj.ledger()
    found = ledger.incident(incident)
    events = ledger.events(incident_id=found.id)
    text = render_postmortem(found, events, obj.config.roles)
    emit({**found.to_json(), "events": [e.to_json() for e in events], "markdown": text}, fmt)


def _record_incident(obj: Ctx, path: Path, incident: Any, events: Any) -> None:
    import yaml

    from agent.incidents.postmortem import scenario_from_incident

    spec = obj.config.target(incident.target).model_dump(mode="json", exclude_defaults=True)
    doc = scenario_from_incident(incident, events, spec, obj.app().tree)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    click.echo(f"recorded scenario to {path}", err=True)


@click.command()
@click.argument("incident")
@output_options
@read_options
@pass_ctx
def status(obj: Ctx, incident: str, as_json: bool, server: str | None, kubeconfig: str | None,
           kube_context: str | None, watch: bool, interval: float) -> None:
    """The status update for INCIDENT as it would be posted now; --server reads it through the daemon."""
    source = Source(obj, server, kubeconfig, kube_context)

    def text() -> str:
        update = source.status(incident)
        if as_json:
            return as_json_text(update["update"])
        return f"{update['id']} {update['headline']}\n{update['text']}"

    show_changes(text, watch, interval)
