"""`hemostat ledger prune` and `hemostat ledger verify-archive`: retention for the ledger, on the
`ledger` group of agent.cli.ledger. The work is in agent.ledger.retention; this parses and prints."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from agent.cli.base import Ctx, emit_json, pass_ctx
from agent.cli.output import output_options, style

if TYPE_CHECKING:
    from agent.ledger import Ledger
    from agent.ledger.retention import PruneReport
    from agent.ledger.sql import SqlLedger

AGE = re.compile(r"^(\d+)d$")


def parse_before(value: str, now: datetime) -> datetime:
    """'90d' (days ago), or an ISO date or time (UTC unless it says otherwise)."""
    if match := AGE.match(value.strip()):
        return now - timedelta(days=int(match.group(1)))
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value[:40]!r} is neither an age like 90d nor an ISO date "
                                 "(2026-09-01 or 2026-09-01T00:00:00Z)", param_hint="--before") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when > now:
        raise click.BadParameter(f"{value} is in the future", param_hint="--before")
    return when


@click.command()
@click.option("--before", "before_text", required=True, metavar="DATE|AGE",
              help="archive incidents resolved before this: an ISO date (UTC) or an age like 90d")
@click.option("--archive", type=click.Path(path_type=Path, dir_okay=False),
              help="new JSON Lines file to move the events and records into (required unless --dry-run)")
@click.option("--dry-run", is_flag=True, help="say what would be archived; change nothing")
@click.option("--owner-dsn", envvar="HEMOSTAT_LEDGER_OWNER_DSN", metavar="DSN",
              help="PostgreSQL: the owner role's DSN (the daemon's role may not delete); "
                   "prefer the env var HEMOSTAT_LEDGER_OWNER_DSN")
@output_options
@pass_ctx
def prune(obj: Ctx, before_text: str, archive: Path | None, dry_run: bool, owner_dsn: str | None,
          as_json: bool) -> None:
    """Move resolved incidents older than --before into an archive; `ledger verify` still passes."""
    from agent.ledger import retention

    now = datetime.now(UTC)
    before = parse_before(before_text, now)
    if not dry_run and archive is None:
        raise click.UsageError("give --archive FILE (or --dry-run): pruned events are moved, never dropped")
    if archive is not None and archive.exists() and not dry_run:
        raise click.BadParameter(f"{archive} exists; an archive is never overwritten", param_hint="--archive")
    store = _sql_ledger(obj, owner_dsn)
    try:
        if archive is None or dry_run:
            report = retention.plan(store, before)
        else:
            report = retention.prune(store, before, archive, obj.user, now)
    finally:
        cast("Ledger", store).close()
    _show(report, dry_run, as_json)


def _sql_ledger(obj: Ctx, owner_dsn: str | None) -> SqlLedger:
    from agent.ledger.sql import SqlLedger

    if owner_dsn:
        from agent.ledger.postgres import PostgresLedger

        return PostgresLedger(owner_dsn)
    store = obj.ledger()
    if not isinstance(store, SqlLedger):
        raise click.UsageError("this ledger backend cannot be pruned")
    return store


def _show(report: PruneReport, dry_run: bool, as_json: bool) -> None:
    if as_json:
        emit_json({**report.to_json(), "dry_run": dry_run})
        return
    if report.events == 0:
        click.echo(f"nothing to prune before {report.before:%Y-%m-%d %H:%M}Z"
                   + (f": {report.stopped_by}" if report.stopped_by else ""))
        return
    verb = "would archive" if dry_run else f"archived to {report.archive}"
    whole = len(report.incidents)
    click.echo(f"{verb}: {report.events} events through event {report.through_seq} "
               f"({whole} incident{'' if whole == 1 else 's'} whole)")
    if report.stopped_by:
        click.echo(f"kept from event {report.through_seq + 1}: {report.stopped_by}")


@click.command("verify-archive")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@output_options
@click.option("--against-ledger", is_flag=True,
              help="also require the archive to start and end at anchors of the configured ledger "
                   "(a fully re-chained archive fails)")
@pass_ctx
def verify_archive(obj: Ctx, path: Path, as_json: bool, against_ledger: bool) -> None:
    """Re-chain an archive written by `ledger prune` and check its records against its events;
    exit 1 naming the first event or record that does not match."""
    from agent.ledger.retention import verify_archive as check

    result = check(path, obj.ledger().anchors() if against_ledger else None)
    end = f"{result.end.through_seq}:{result.end.hash}" if result.end else None
    if as_json:
        emit_json({"ok": result.ok, "checked": result.checked, "end": end,
                   "broken_seq": result.broken_seq, "reason": result.reason})
    elif result.ok:
        click.echo(f"archive ok: {result.checked} events chained; it ends at {end}, "
                   "the anchor `ledger verify` starts from")
    else:
        click.echo(style("archive broken: ", err=True, fg="red", bold=True) + str(result.reason), err=True)
    sys.exit(0 if result.ok else 1)
