"""`hemostat config check` (the config offline: every problem, each with its path) and `hemostat
doctor` (that, then per target and probe: does the backend answer, may the Kubernetes identity do
what the probe needs). The checks are agent.diagnosis.doctor's. Put on the group by agent.cli.main.
"""

from __future__ import annotations

import sys

import click

from agent.cli.base import Ctx, emit_json, pass_ctx
from agent.cli.output import output_options, style


@click.group("config")
def config_group() -> None:
    """Check a hemostat.yaml before the daemon runs on it."""


def _problems(obj: Ctx, as_json: bool) -> tuple[object, list[tuple[str, str]]]:
    from agent.diagnosis.doctor import config_problems

    if not obj.config_path.is_file():
        return None, [("", f"no such config file {obj.config_path} (give --config or HEMOSTAT_CONFIG)")]
    return config_problems(obj.config_path)


def _print_problems(obj: Ctx, problems: list[tuple[str, str]]) -> None:
    if not problems:
        click.echo(f"{obj.config_path}: ok")
        return
    click.echo(style(f"{obj.config_path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}",
                     err=True, fg="red", bold=True), err=True)
    for where, what in problems:
        click.echo(f"  {where or '(top level)'}: {what}", err=True)


@config_group.command("check")
@output_options
@pass_ctx
def check(obj: Ctx, as_json: bool) -> None:
    """Validate the config offline and report every problem with its path (exit 2 if any)."""
    _, problems = _problems(obj, as_json)
    if as_json:
        emit_json({"config": str(obj.config_path), "ok": not problems,
                   "problems": [{"path": w, "problem": p} for w, p in problems]})
    else:
        _print_problems(obj, problems)
    sys.exit(2 if problems else 0)


@click.command()
@click.option("--target", "only", help="only this target")
@output_options
@pass_ctx
def doctor(obj: Ctx, only: str | None, as_json: bool) -> None:
    """Check the config, then per target and probe: does its backend answer, and may this
    identity do what it needs (kubectl auth can-i)? Exit 0 all ok, 1 something failing, 2 the
    config itself is wrong."""
    import asyncio

    from agent.cli import render
    from agent.diagnosis.doctor import reach
    from agent.diagnosis.wiring import build_app

    config, problems = _problems(obj, as_json)
    if problems or config is None:
        if as_json:
            emit_json({"config": str(obj.config_path), "ok": False, "rows": [],
                       "problems": [{"path": w, "problem": p} for w, p in problems]})
        else:
            _print_problems(obj, problems)
        sys.exit(2)
    app = build_app(obj.config)
    if only is not None:
        app.config.target(only)  # an unknown name: exit 2, naming the known ones
    rows = asyncio.run(reach(app, only))
    failing = [r for r in rows if not r.ok]
    if as_json:
        emit_json({"config": str(obj.config_path), "ok": not failing, "problems": [],
                   "rows": [r.to_json() for r in rows]})
    else:
        click.echo(f"{obj.config_path}: config ok\n")
        click.echo(render.table([(r.target, r.probe, r.check,
                                  style("ok", fg="green") if r.ok else style("failing", fg="red"), r.why)
                                 for r in rows], ("TARGET", "PROBE", "CHECK", "STATUS", "WHY"))
                   if rows else "no targets configured")
    sys.exit(1 if failing else 0)
