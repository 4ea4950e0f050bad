"""`hemostat execute ID`: run an approved proposal from the command line, for teams without the
daemon. The same path as the daemon's executor (approval TTL, the gate again, plan, claim in the
ledger, execute, verify), so it runs exactly once whoever gets there first. Registered on the
main `hemostat` group by agent.cli."""

from __future__ import annotations

import click

from agent.cli.base import Ctx, emit_json, fail, pass_ctx
from agent.cli.output import output_options


@click.command()
@click.argument("ref")
@output_options
@pass_ctx
def execute(obj: Ctx, ref: str, as_json: bool) -> None:
    """Execute approved proposal REF here and now: claim, plan, execute, verify (exactly once)."""
    import asyncio

    from agent.execution.executor import Executor
    from agent.incidents.lifecycle import after_execution
    from agent.model.context import utcnow

    app, ledger = obj.app(), obj.ledger()
    record = ledger.proposal(ref)
    if record.state != "approved":
        fail(f"{record.id} is {record.state}; only an approved proposal can be executed", 2)
    ran = asyncio.run(Executor(app, ledger, obj.user).execute(record))
    after = ledger.proposal(record.id)
    if ran and after.proposal.incident_id:
        after_execution(ledger, after, obj.user, utcnow())
    events = ledger.events(proposal_id=after.id)
    detail = next((str(e.data.get("reason") or e.data.get("error") or e.data.get("detail") or "")
                   for e in reversed(events) if e.type.startswith("proposal_")), "")
    if as_json:
        emit_json({**after.to_json(), "ran": ran, "detail": detail})
    else:
        who = f" (claimed by {after.claimed_by})" if not ran and after.claimed_by else ""
        click.echo(f"{after.id} {after.proposal.action} {after.proposal.subject}: {after.state}{who}"
                   + (f": {detail}" if detail else ""))
    if after.state != "succeeded":
        raise SystemExit(1)
