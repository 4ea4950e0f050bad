"""The `hemostat` command. Each command imports only what it uses, so `proposals` and
`approve` answer as fast as kubectl; every option is also an env var (HEMOSTAT_<OPTION>).

Exit codes: 0 ok; 1 the thing asked for failed (or a drill failed); 2 bad input (usage,
config, policy, scenario).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from agent import __version__

if TYPE_CHECKING:
    from agent.config import Config
    from agent.ledger import Ledger
    from agent.model.identity import Identity
    from agent.wiring import App


F = TypeVar("F", bound=Callable[..., Any])
BAD_INPUT = ("not_found", "ambiguous", "usage")  # error codes that exit 2


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
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
        from agent.identity import asserted

        return asserted(self._user)

    @property
    def user(self) -> str:
        return self.identity.name

    def approves_as_login(self) -> bool:
        """On a PostgreSQL ledger, approve and reject act as the login role PostgreSQL
        authenticated (agent/identity_pg.py), unless a name is given with --user."""
        return self.config.store.backend == "postgres" and not self.user_given

    @property
    def config(self) -> Config:
        """The config file, which must exist: a typo in --config must not quietly become an
        empty config with a stray ledger beside it."""
        if self._config is None:
            from agent.config import load_config
            from agent.model import ConfigError

            if not self.config_path.is_file():
                raise ConfigError(str(self.config_path), "", "no such config file (give --config or "
                                  "HEMOSTAT_CONFIG; `hemostat demo` writes an example)")
            self._config = load_config(self.config_path)
        return self._config

    def app(self, policy: Path | None = None, *, config_optional: bool = False) -> App:
        """`config_optional`: commands that need no target (drills) run on defaults without one."""
        from agent.config import Config
        from agent.wiring import build_app

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
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="include decided and finished ones")
@pass_ctx
def proposals(obj: Ctx, as_json: bool, show_all: bool) -> None:
    """Proposals waiting for a decision (with --all: every proposal)."""
    from agent import render

    records = obj.ledger().proposals(states=None if show_all else ("proposed", "approved"))
    if as_json:
        emit_json([r.to_json() for r in records])
    else:
        click.echo(render.proposals(records))


@cli.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(obj: Ctx, ref: str, as_json: bool) -> None:
    """One proposal (p-...) or incident (inc-...), with its timeline."""
    from agent import render

    ledger = obj.ledger()
    if ref.startswith("inc-"):
        incident = ledger.incident(ref)
        events = ledger.events(incident_id=incident.id)
        records = ledger.proposals(incident_id=incident.id)
        if as_json:
            emit_json({**incident.to_json(), "events": [e.to_json() for e in events],
                       "proposals": [r.to_json() for r in records]})
        else:
            click.echo(render.incidents([incident]) + "\n\n" + render.incident_proposals(records, events)
                       + "\n\n" + render.timeline(events))
        return
    record = ledger.proposal(ref)
    events = ledger.events(proposal_id=record.id)
    if as_json:
        emit_json({**record.to_json(), "events": [e.to_json() for e in events]})
    else:
        click.echo(render.proposal_detail(record, events))


@cli.command()
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
        from agent.approval_client import approve_remote

        click.echo(approve_remote(server, ref, kubeconfig, kube_context)["message"])
        return
    if obj.approves_as_login():
        if override_cooldown:
            raise click.UsageError("--override-cooldown is not offered by the ledger's approval "
                                   "function; use --server, or --user where the policy trusts it")
        from agent.identity_pg import approve_by_login

        click.echo(approve_by_login(obj.config, ref))
        return
    _approve_in_ledger(obj, ref, reason if override_cooldown else None)


def _approve_in_ledger(obj: Ctx, ref: str, override_reason: str | None) -> None:
    from datetime import UTC, datetime

    from agent.approvals import override_cooldown, who_runs_it
    from agent.identity import Approving, approved_message, give_approval

    ledger, rules = obj.ledger(), Approving.load(obj.config)
    now = datetime.now(UTC)  # not agent.model.context.utcnow: that module pulls in redis
    if override_reason is not None:
        record = override_cooldown(ledger, rules, ref, obj.identity, override_reason, now)
    else:
        record = give_approval(rules, ledger, ref, obj.identity, now)
    click.echo(f"{approved_message(record, obj.identity.name)}: {who_runs_it(ledger, record, now)}")


@cli.command()
@click.argument("ref")
@click.option("--reason", required=True, help="why not; goes into the timeline")
@pass_ctx
def reject(obj: Ctx, ref: str, reason: str) -> None:
    """Reject proposal REF, with a reason."""
    if obj.approves_as_login():
        from agent.identity_pg import reject_by_login

        click.echo(reject_by_login(obj.config, ref, reason))
        return
    from agent.model.context import utcnow

    record = obj.ledger().transition(ref, "rejected", obj.user, utcnow(), {"reason": reason})
    click.echo(f"{record.id} {record.proposal.action} {record.proposal.subject}: rejected by {obj.user}")


@cli.group()
def policy() -> None:
    """Check and explain policy files."""


@policy.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def policy_check(file: Path) -> None:
    """Validate FILE: schema, and every action it names is registered."""
    from agent.registry import Registry
    from policies.model import load_policy

    loaded = load_policy(file, Registry.discover().actions)
    click.echo(f"{file}: ok (mode {loaded.mode}, {len(loaded.actions)} actions)")


@cli.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--policy", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="policy to gate with (default: the bundled staging-drill, dry-run)")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def drill(obj: Ctx, files: tuple[Path, ...], policy: Path | None, as_json: bool) -> None:
    """Replay recorded incidents through triage, the tree and the gate, in dry-run."""
    from agent.drill import conclusions, run_drill
    from policies.model import bundled_policy_path

    app = obj.app(policy or bundled_policy_path("staging-drill"), config_optional=True)
    results = [run_drill(app, f) for f in files]
    passed = sum(r.passed for r in results)
    if as_json:
        emit_json([conclusions(r) for r in results])
    else:
        for r in results:
            mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
            click.echo(f"{mark} {r.path}: {r.name}")
            for failure in r.failures:
                click.echo(f"     {failure}")
    click.echo(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """The registered probes and actions, and where each came from."""
    from agent import render
    from agent.registry import Registry

    registry = Registry.discover()
    rows = [("probe", r.name, r.plugin.summary, r.origin) for r in registry.probes.values()]
    rows += [("action", r.name, r.plugin.summary, r.origin) for r in registry.actions.values()]
    if as_json:
        emit_json([{"kind": k, "name": n, "summary": s, "origin": o} for k, n, s, o in rows])
    else:
        click.echo(render.table(rows, ("KIND", "NAME", "WHAT", "FROM")))


@cli.command()
@click.option("--dir", "workdir", type=click.Path(path_type=Path, file_okay=False),
              help="build the demo here instead of a temp dir")
def demo(workdir: Path | None) -> None:
    """Build a real local incident (git deploys, a failing app, a dependency) and diagnose it."""
    from agent.demo import run_demo

    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        fail(f"{workdir} already exists and is not empty; give --dir a new or empty folder", 2)
    run_demo(workdir)


def main() -> None:
    from agent.model.lean_imports import exit_now, pybreaker_without_redis

    pybreaker_without_redis()
    try:
        cli(prog_name="hemostat")
    except SystemExit as e:  # click always ends this way
        exit_now(e.code)
    exit_now(0)


# Incident-handling, execution and ledger commands live in their own modules; importing them
# registers them on `cli`.
from agent import cli_diagnose, cli_execute, cli_ledger, cli_ops, cli_retention  # noqa: E402, F401
