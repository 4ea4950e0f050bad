"""`hemostat completion bash|zsh|fish`: the shell completion script, from click's own completion
(commands, options, choices). Put on the `hemostat` group by agent.cli.main."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(hemostat completion bash)"   (in ~/.bashrc)
    zsh:   eval "$(hemostat completion zsh)"    (in ~/.zshrc)
    fish:  hemostat completion fish > ~/.config/fish/completions/hemostat.fish
    """
    from click.shell_completion import get_completion_class

    kind = get_completion_class(shell)
    assert kind is not None  # click ships all three
    root = ctx.find_root()
    click.echo(kind(root.command, {}, "hemostat", "_HEMOSTAT_COMPLETE").source())
