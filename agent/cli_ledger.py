"""`hemostat ledger ...`: checks on the ledger itself. `verify` recomputes the events' hash chain
and names the first broken link (exit 1). Registered on the main group by agent.cli; other ledger
maintenance commands (`ledger prune`) join this group and must keep the chain verifiable: prune
only through `Ledger.prune_through` (see agent/ledger/chain.py for the anchor it writes).
"""

from __future__ import annotations

import sys

import click

from agent.cli import Ctx, cli, emit_json, pass_ctx


@cli.group()
def ledger() -> None:
    """Check the ledger's integrity (the events' hash chain)."""


@ledger.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_ctx
def verify(obj: Ctx, as_json: bool) -> None:
    """Recompute every event's hash; exit 1 naming the first event that does not chain."""
    result = obj.ledger().verify_chain()
    if as_json:
        emit_json(result.to_json())
    elif result.ok:
        since = f" since the anchor at event {result.anchor.through_seq}" if result.anchor else ""
        head = f"; head is event {result.head_seq}, hash {result.head_hash}" if result.checked else ""
        click.echo(f"ledger ok: {result.checked} events chained{since}{head}")
    else:
        click.echo(click.style("ledger broken: ", fg="red", bold=True) + f"{result.reason}", err=True)
        click.echo(f"the {result.checked} events before event {result.broken_seq} verify", err=True)
    sys.exit(0 if result.ok else 1)
