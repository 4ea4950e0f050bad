"""`hemostat run`: start the daemon (agent.server.daemon) after the checks that must pass before
it says it is ready: a valid listen address, a readable webhook token, live queries that parse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent.cli.base import Ctx, fail, pass_ctx


@click.command()
@click.option("--listen", help="host:port for the webhook and /metrics (default: intake.listen)")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", type=click.Choice(["json", "console"]),
              help="json: one JSON object a line (default off a terminal); console: for people")
@click.option("--allow-unauthenticated", is_flag=True,
              help="listen beyond loopback with the webhook on and no intake.token: anyone who "
                   "reaches the port can post alerts")
@pass_ctx
def run(obj: Ctx, listen: str | None, log_level: str, log_format: str | None,
        allow_unauthenticated: bool) -> None:
    """Run the daemon: Alertmanager intake, sweeps, executor, /healthz /readyz /metrics."""
    import asyncio

    from agent.logs import configure
    from agent.server.daemon import Daemon

    configure(log_level, log_format)
    host, _, port = (listen or obj.config.intake.listen).rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{listen!r} is not host:port", param_hint="--listen")
    intake = obj.config.intake
    if intake.webhook and intake.token is None and not loopback(host) and not allow_unauthenticated:
        fail(f"refusing to listen on {host}:{port} with the webhook on and no intake.token: anyone "
             "who reaches the port could post alerts. Set intake.token ({env: NAME} or {file: PATH}), "
             "listen on 127.0.0.1, turn intake.webhook off, or pass --allow-unauthenticated", 2)
    app = obj.app()
    from agent.diagnosis.wiring import validate_live

    check_token(obj.config, obj.config_path)
    asyncio.run(validate_live(app, str(obj.config_path)))  # a bad query refuses to start
    daemon = Daemon(app, obj.ledger(), executor_interval_s=app.config.executor.pass_interval_s)
    try:
        asyncio.run(daemon.serve(host, int(port)))
    except OSError as e:  # the port is taken, or the address is not ours: one line, exit 2
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}", 2)


def loopback(host: str) -> bool:
    """Only this machine can connect: localhost or a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress

    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve anywhere
        return False


def check_token(config: Any, config_path: Path) -> None:
    """The webhook token must be readable and non-empty before the daemon says it is ready, not
    found missing when the first alert gets a 503."""
    from agent.model import ConfigError, HemostatError

    token = config.intake.token
    if token is None:
        return
    try:
        value = token.resolve()
    except HemostatError as e:
        raise ConfigError(str(config_path), "intake.token", str(e)) from None
    if not value:
        raise ConfigError(str(config_path), "intake.token", f"secret {token.describe()} is empty")
