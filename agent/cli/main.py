"""The `hemostat` command: the top-level group and the one list of its subcommands.

Each command lives in a module of this package by what it is for and imports only what it
uses, so `proposals` and `approve` answer as fast as kubectl; every option is also an env var
(HEMOSTAT_<OPTION>). Command modules never import this one: it imports them and puts them on
the group, so adding a command is one line in `_COMMANDS`.

Exit codes: 0 ok; 1 the thing asked for failed (or a drill failed); 2 bad input (usage,
config, policy, scenario).
"""

from __future__ import annotations

from pathlib import Path

import click

from agent import __version__
from agent.cli import (
    completion,
    daemon,
    demo,
    diagnose,
    doctor,
    drill,
    execute,
    incidents,
    ledger,
    policy,
    proposals,
    retention,
)
from agent.cli import ui as web_ui
from agent.cli.base import Ctx, Group


@click.group(cls=Group, context_settings={"auto_envvar_prefix": "HEMOSTAT",
                                          "help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              default="hemostat.yaml", show_default=True, envvar="HEMOSTAT_CONFIG",
              help="hemostat.yaml to use (env HEMOSTAT_CONFIG)")
@click.option("--user", help="who you are in the ledger (default: $USER)")
@click.version_option(__version__, prog_name="hemostat")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, user: str | None) -> None:
    """Hemostat: diagnose an incident, propose a mitigation, execute it once approved."""
    ctx.obj = Ctx(config_path, user)


# Every subcommand, in the order `hemostat --help` lists them (click sorts by name anyway).
_COMMANDS: tuple[click.Command, ...] = (
    diagnose.diagnose, proposals.proposals, proposals.show, proposals.approve, proposals.reject,
    execute.execute, incidents.incidents, incidents.ack, incidents.resolve, incidents.assign,
    incidents.revert, incidents.status, incidents.postmortem,
    daemon.run, policy.policy, policy.plugins, drill.drill, demo.demo, ledger.ledger,
    completion.completion, doctor.doctor, doctor.config_group, web_ui.ui,
)
_LEDGER_COMMANDS: tuple[click.Command, ...] = (retention.prune, retention.verify_archive)

for _command in _COMMANDS:
    cli.add_command(_command)
for _command in _LEDGER_COMMANDS:
    ledger.ledger.add_command(_command)


def main() -> None:
    from agent.model.lean_imports import exit_now, pybreaker_without_redis

    pybreaker_without_redis()
    try:
        cli(prog_name="hemostat")
    except SystemExit as e:  # click always ends this way
        exit_now(e.code)
    exit_now(0)
