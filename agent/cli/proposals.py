"""What waits for a decision and the decision itself: `proposals`, `show`, `approve`, `reject`."""

from __future__ import annotations

import click

from agent.cli.base import Ctx, pass_ctx, server_options
from agent.cli.output import current, output_options
from agent.cli.reading import Source, as_json_text, filter_options, filters, read_options
from agent.cli.reading import show as show_changes


@click.command()
@output_options
@click.option("--all", "show_all", is_flag=True, help="include decided and finished ones")
@filter_options
@read_options
@pass_ctx
def proposals(obj: Ctx, as_json: bool, show_all: bool, target: str | None, severity: str | None,
              since: str | None, server: str | None, kubeconfig: str | None, kube_context: str | None,
              watch: bool, interval: float) -> None:
    """Proposals waiting for a decision (with --all: every proposal); --server reads them through
    the daemon."""
    from agent.cli import render

    source, only = Source(obj, server, kubeconfig, kube_context), filters(target, severity, since)

    def text() -> str:
        records = source.proposals(only, show_all)
        if as_json:
            return as_json_text([r.to_json() for r in records])
        return render.proposals(records, wide=current() == "wide")

    show_changes(text, watch, interval)


@click.command()
@click.argument("ref")
@output_options
@read_options
@pass_ctx
def show(obj: Ctx, ref: str, as_json: bool, server: str | None, kubeconfig: str | None,
         kube_context: str | None, watch: bool, interval: float) -> None:
    """One proposal (p-...) or incident (inc-...), with its timeline; --server reads it through
    the daemon."""
    from agent.cli import render

    source = Source(obj, server, kubeconfig, kube_context)

    def text() -> str:
        if ref.startswith("inc-"):
            incident, events, records = source.incident(ref)
            if as_json:
                return as_json_text({**incident.to_json(), "events": [e.to_json() for e in events],
                                     "proposals": [r.to_json() for r in records]})
            return (render.incidents([incident]) + "\n\n" + render.incident_proposals(records, events)
                    + "\n\n" + render.timeline(events))
        record, events = source.proposal(ref)
        if as_json:
            return as_json_text({**record.to_json(), "events": [e.to_json() for e in events]})
        return render.proposal_detail(record, events)

    show_changes(text, watch, interval)


@click.command()
@click.argument("ref")
@server_options("the daemon's approval API: approve with your kubeconfig credentials")
@click.option("--override-cooldown", is_flag=True,
              help="approve a proposal denied only by its cooldown, where the policy allows it")
@click.option("--reason", help="why (required with --override-cooldown; goes into the timeline)")
@pass_ctx
def approve(obj: Ctx, ref: str, server: str | None, kubeconfig: str | None, kube_context: str | None,
            override_cooldown: bool, reason: str | None) -> None:
    """Approve proposal REF; says whether a running daemon will execute it or `hemostat execute
    REF` is needed.

    With --server, your Kubernetes identity approves (checked by the daemon with a TokenReview
    and a SubjectAccessReview). Without it, the approval is recorded in the ledger under --user
    (or your OS user), which only a policy listing `asserted` in approvers.sources accepts.
    """
    if override_cooldown and not reason:
        raise click.UsageError("--override-cooldown needs --reason")
    if server:
        if override_cooldown:
            raise click.UsageError("--override-cooldown is not offered by the approval API yet")
        from agent.cli.approval_client import approve_remote

        click.echo(approve_remote(server, ref, kubeconfig, kube_context)["message"])
        return
    if obj.approves_as_login():
        if override_cooldown:
            raise click.UsageError("--override-cooldown is not offered by the ledger's approval "
                                   "function; use --server, or --user where the policy trusts it")
        from agent.execution.identity_pg import approve_by_login

        click.echo(approve_by_login(obj.config, ref))
        return
    _approve_in_ledger(obj, ref, reason if override_cooldown else None)


def _approve_in_ledger(obj: Ctx, ref: str, override_reason: str | None) -> None:
    from datetime import UTC, datetime

    from agent.execution.approvals import override_cooldown, who_runs_it
    from agent.execution.identity import Approving, approved_message, give_approval

    ledger, rules = obj.ledger(), Approving.load(obj.config)
    now = datetime.now(UTC)  # not agent.model.context.utcnow: that module pulls in redis
    if override_reason is not None:
        record = override_cooldown(ledger, rules, ref, obj.identity, override_reason, now)
    else:
        record = give_approval(rules, ledger, ref, obj.identity, now)
    click.echo(f"{approved_message(record, obj.identity.name)}: {who_runs_it(ledger, record, now)}")


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="why not; goes into the timeline")
@pass_ctx
def reject(obj: Ctx, ref: str, reason: str) -> None:
    """Reject proposal REF, with a reason."""
    if obj.approves_as_login():
        from agent.execution.identity_pg import reject_by_login

        click.echo(reject_by_login(obj.config, ref, reason))
        return
    from agent.model.context import utcnow

    record = obj.ledger().transition(ref, "rejected", obj.user, utcnow(), {"reason": reason})
    click.echo(f"{record.id} {record.proposal.action} {record.proposal.subject}: rejected by {obj.user}")
