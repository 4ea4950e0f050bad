"""`hemostat demo`: a real local incident, worked from diagnosis to post-mortem. The scene itself
(git repo, the app it deploys, config) is built by agent.cli.demo_scene, imported only when the
command runs."""

from __future__ import annotations

from pathlib import Path

import click

from agent.cli.base import fail


@click.command()
@click.option("--dir", "workdir", type=click.Path(path_type=Path, file_okay=False),
              help="build the demo here instead of a temp dir")
@click.option("--serve", "serve_dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="instead: serve the app of the demo built in this folder again (to replay steps.sh)")
def demo(workdir: Path | None, serve_dir: Path | None) -> None:
    """Build a real local incident (a git-deployed app failing after a deploy, a dependency),
    then diagnose, approve, execute (git revert, verified by effect), resolve, post-mortem."""
    from agent.cli import demo_scene

    if serve_dir is not None:
        if not (serve_dir / "hemostat.yaml").is_file():
            fail(f"{serve_dir} holds no demo (no hemostat.yaml): give a folder that `demo --dir` built", 2)
        demo_scene.serve_app(serve_dir)
        return
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        fail(f"{workdir} already exists and is not empty; give --dir a new or empty folder", 2)
    demo_scene.run_demo(workdir)
