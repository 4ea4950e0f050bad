"""`hemostat demo`: a real local incident, diagnosed. The scene itself (git repo, failing app,
config) is built by agent.cli.demo_scene, imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from agent.cli.base import fail


@click.command()
@click.option("--dir", "workdir", type=click.Path(path_type=Path, file_okay=False),
              help="build the demo here instead of a temp dir")
def demo(workdir: Path | None) -> None:
    """Build a real local incident (git deploys, a failing app, a dependency) and diagnose it."""
    from agent.cli.demo_scene import run_demo

    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        fail(f"{workdir} already exists and is not empty; give --dir a new or empty folder", 2)
    run_demo(workdir)
