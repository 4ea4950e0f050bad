"""`hemostat drill`: replay recorded incidents (agent.diagnosis.drill) and report each."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agent.cli.base import Ctx, emit_json, pass_ctx
from agent.cli.output import output_options, style


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--policy", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="policy to gate with (default: the bundled staging-drill, dry-run)")
@output_options
@pass_ctx
def drill(obj: Ctx, files: tuple[Path, ...], policy: Path | None, as_json: bool) -> None:
    """Replay recorded incidents through triage, the tree and the gate, in dry-run."""
    from agent.diagnosis.drill import conclusions, run_drill
    from policies.model import bundled_policy_path

    app = obj.app(policy or bundled_policy_path("staging-drill"), config_optional=True)
    results = [run_drill(app, f) for f in files]
    passed = sum(r.passed for r in results)
    if as_json:
        emit_json([conclusions(r) for r in results])
    else:
        for r in results:
            mark = style("PASS", fg="green") if r.passed else style("FAIL", fg="red")
            click.echo(f"{mark} {r.path}: {r.name}")
            for failure in r.failures:
                click.echo(f"     {failure}")
    # stdout of a JSON mode is that one document; the count goes to stderr there
    click.echo(f"{passed} passed, {len(results) - passed} failed", err=as_json)
    sys.exit(0 if passed == len(results) else 1)
