"""`hemostat ledger ...`: checks on the ledger itself. `verify` recomputes the events' hash chain
and names the first broken link (exit 1). Put on the `hemostat` group by agent.cli.main; other ledger
maintenance commands (`ledger prune`) join this group and must keep the chain verifiable: prune
only through `Ledger.prune_through` (see agent/ledger/chain.py for the anchor it writes).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from agent.cli.base import Ctx, emit_json, pass_ctx
from agent.cli.output import output_options, style

if TYPE_CHECKING:
    from agent.ledger.chain import Anchor


@click.group()
def ledger() -> None:
    """Check the ledger's integrity (the events' hash chain)."""


@ledger.command()
@output_options
@click.option("--expect", metavar="SEQ:HASH", callback=lambda _c, _p, v: _head(v),
              help="a head printed by an earlier verify: the chain must still hold it")
@pass_ctx
def verify(obj: Ctx, as_json: bool, expect: Anchor | None) -> None:
    """Recompute every event's hash; exit 1 naming the first event that does not chain."""
    from agent.execution.identity import seal_key_of

    result = obj.ledger().verify_chain(expect, seal_key=seal_key_of(obj.config))
    if as_json:
        emit_json(result.to_json())
    elif result.ok:
        since = f" since the anchor at event {result.anchor.through_seq}" if result.anchor else ""
        head = f"; head {result.head_seq}:{result.head_hash}" if result.checked else ""
        click.echo(f"ledger ok: {result.checked} events chained{since}{head}")
    else:
        click.echo(style("ledger broken: ", err=True, fg="red", bold=True) + f"{result.reason}", err=True)
        if result.broken_seq is not None:
            click.echo(f"the {result.checked} events before event {result.broken_seq} verify", err=True)
    sys.exit(0 if result.ok else 1)


def _head(value: str | None) -> Anchor | None:
    from agent.ledger.chain import Anchor

    if value is None:
        return None
    seq, _, digest = value.strip().partition(":")
    digest = digest.removesuffix("…").removesuffix("...").lower()
    hexadecimal = all(c in "0123456789abcdef" for c in digest)
    if not seq.isdigit() or not MIN_HASH <= len(digest) <= 64 or not hexadecimal:
        raise click.BadParameter(f"{value[:80]!r} is not SEQ:HASH as `ledger verify` prints it "
                                 f"(e.g. 1834:5d1c2f0a…: the hash or its first {MIN_HASH}+ hex digits)",
                                 param_hint="--expect")
    return Anchor(int(seq), digest)


MIN_HASH = 8  # hex digits of a head written down by hand: 32 bits, the full 64 are stronger


@ledger.command()
@click.option("--owner-dsn", envvar="HEMOSTAT_LEDGER_OWNER_DSN", metavar="DSN",
              help="the owner role's DSN; prefer the env var HEMOSTAT_LEDGER_OWNER_DSN "
                   "(default: store.dsn from the config)")
@click.option("--daemon-role", metavar="ROLE", help="the daemon's PostgreSQL role: may append, "
              "never alter (env HEMOSTAT_LEDGER_MIGRATE_DAEMON_ROLE)")
@click.option("--approver-role", "approver_roles", multiple=True, metavar="ROLE",
              help="a role whose members approve through the ledger's approval function; repeatable")
@pass_ctx
def migrate(obj: Ctx, owner_dsn: str | None, daemon_role: str | None,
            approver_roles: tuple[str, ...]) -> None:
    """Bring the ledger's schema up to date as its owner, and grant the daemon and approvers.

    With --owner-dsn (or HEMOSTAT_LEDGER_OWNER_DSN) no config file is needed: the chart's
    migration Job runs before the config exists."""
    if owner_dsn is not None and not obj.config_path.is_file():
        from agent.ledger.postgres import PostgresLedger

        _report(PostgresLedger(owner_dsn), daemon_role, approver_roles)
        return
    store = obj.config.store
    if store.backend != "postgres" and owner_dsn is None:
        if daemon_role or approver_roles:
            raise click.UsageError("roles exist only on a PostgreSQL ledger (store.backend: postgres)")
        obj.ledger().close()
        click.echo(f"ledger {store.path}: schema up to date")
        return
    from agent.ledger.postgres import PostgresLedger

    dsn = owner_dsn or (store.dsn.resolve() if store.dsn else "")
    _report(PostgresLedger(dsn), daemon_role, approver_roles)


def _report(ledger: Any, daemon_role: str | None, approver_roles: tuple[str, ...]) -> None:
    grants = ledger.grant(daemon_role, approver_roles)
    click.echo(f"ledger {ledger.where}: schema version {ledger.schema_version()}")
    for table, privileges in grants.tables.items():
        click.echo(f"  {grants.daemon}: {privileges} on {grants.schema}.{table}")
    for role in grants.approvers:
        click.echo(f"  {role}: EXECUTE on the approval functions, nothing else")
    ledger.close()
