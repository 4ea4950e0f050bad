"""What every `hemostat` command shares: the per-invocation context (`Ctx`: config, app and
ledger, loaded on first use), the group class that turns Hemostat's errors into one line and an
exit code, and small output helpers. Command modules import this; `agent.cli.main` puts them on
the `hemostat` group. Nothing here imports a command module.

Exit codes: 0 ok; 1 the thing asked for failed (or a drill failed); 2 bad input (usage,
config, policy, scenario).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from agent.diagnosis.wiring import App
    from agent.ledger import Ledger
    from agent.model.config import Config
    from agent.model.identity import Identity


F = TypeVar("F", bound=Callable[..., Any])
BAD_INPUT = ("not_found", "ambiguous", "usage")  # error codes that exit 2


def fail(message: str, code: int = 1) -> NoReturn:
    from agent.cli.output import style

    click.echo(style("error: ", err=True, fg="red", bold=True) + message, err=True)
    sys.exit(code)


class Ctx:
    """Lazily loaded config, app and ledger for one invocation."""

    def __init__(self, config_path: Path, user: str | None) -> None:
        self.config_path = config_path
        self._user = user
        self.user_given = user is not None  # --user / HEMOSTAT_USER, as opposed to the OS user
        self._config: Config | None = None

    @functools.cached_property
    def identity(self) -> Identity:
        """What --user (or the OS user) claims; proves nothing. Worked out when a command needs
        it (the policy models behind it are not a diagnosis's first concern)."""
        from agent.execution.identity import asserted

        return asserted(self._user)

    @property
    def user(self) -> str:
        return self.identity.name

    def approves_as_login(self) -> bool:
        """On a PostgreSQL ledger, approve and reject act as the login role PostgreSQL
        authenticated (agent/execution/identity_pg.py), unless a name is given with --user."""
        return self.config.store.backend == "postgres" and not self.user_given

    @property
    def config(self) -> Config:
        """The config file, which must exist: a typo in --config must not quietly become an
        empty config with a stray ledger beside it."""
        if self._config is None:
            from agent.model import ConfigError
            from agent.model.config import load_config

            if not self.config_path.is_file():
                raise ConfigError(str(self.config_path), "", "no such config file (give --config or "
                                  "HEMOSTAT_CONFIG; `hemostat demo` writes an example)")
            self._config = load_config(self.config_path)
        return self._config

    def app(self, policy: Path | None = None, *, config_optional: bool = False) -> App:
        """`config_optional`: commands that need no target (drills) run on defaults without one."""
        from agent.diagnosis.wiring import build_app
        from agent.model.config import Config

        optional = config_optional and not self.config_path.is_file()
        return build_app(Config() if optional else self.config, policy_override=policy)

    def ledger(self) -> Ledger:
        from agent.ledger import open_ledger

        return open_ledger(self.config.store)


GLOBAL_OPTIONS = ("--config", "--user")


def hoist_globals(args: list[str]) -> list[str]:
    """`hemostat approve ID --user you` works like `hemostat --user you approve ID`: the global
    options found after the subcommand move in front of it (everything after `--` stays)."""
    head: list[str] = []
    tail: list[str] = []
    i, before_command = 0, True
    while i < len(args):
        arg = args[i]
        if arg == "--":
            tail += args[i:]
            break
        if arg.split("=", 1)[0] in GLOBAL_OPTIONS:
            chunk = args[i:i + 1] if "=" in arg else args[i:i + 2]
            head += chunk
            i += len(chunk)
            continue
        before_command = before_command and arg.startswith("-")
        (head if before_command else tail).append(arg)
        i += 1
    return head + tail


class Group(click.Group):
    """Turns Hemostat's own errors into one clear line and the right exit code, and takes the
    global options after the subcommand too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_globals(args) if ctx.parent is None else args)

    def invoke(self, ctx: click.Context) -> Any:
        from agent.model import ConfigError, HemostatError

        try:
            return super().invoke(ctx)
        except ConfigError as e:
            fail(str(e), 2)
        except HemostatError as e:  # an unknown or ambiguous id, or a misused option, is bad input
            fail(str(e), 2 if e.code in BAD_INPUT else 1)


pass_ctx = click.make_pass_decorator(Ctx)

def server_options(server_help: str) -> Callable[[F], F]:
    """--server URL (env HEMOSTAT_SERVER), --kubeconfig and --context: the daemon's API, called
    with the engineer's own kubeconfig credential."""
    def decorate(command: F) -> F:
        for option in reversed((
                click.option("--server", envvar="HEMOSTAT_SERVER", metavar="URL",
                             help=f"{server_help} (env HEMOSTAT_SERVER)"),
                click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
                             help="kubeconfig whose credential is sent to --server (env KUBECONFIG)"),
                click.option("--context", "kube_context",
                             help="kubeconfig context (default: the current one)"))):
            command = option(command)
        return command
    return decorate


def emit_json(data: Any) -> None:
    """One document on stdout: JSON, or YAML when the command was given `-o yaml`."""
    from agent.cli.output import current, dump

    click.echo(dump(data, "yaml" if current() == "yaml" else "json"))

