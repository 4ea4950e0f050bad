"""Output conventions every `hemostat` command shares, as kubectl and gh keep them.

- `-o json|yaml|wide` (`output_options`) wherever `--json` exists; `--json` stays, as `-o json`.
  A JSON or YAML mode writes exactly one document to stdout; everything else goes to stderr.
- Colour only on a terminal and never with NO_COLOR set (https://no-color.org): `style`.
- Times with their age beside them (`when`: "2026-12-08 00:39Z (4m ago)").
- Progress for a wait (`progress`) on stderr, on a terminal only.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import click

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("json", "yaml", "wide")
KEY = "hemostat.output"


def output_options(command: F) -> F:
    """`--json` and `-o/--output json|yaml|wide` on a command written for `--json`: the command
    still receives `as_json` (True for json and yaml), and `base.emit_json` writes the format
    asked for; `current()` tells a table renderer about `wide`."""
    @functools.wraps(command)
    def wrapper(*args: Any, as_json: bool = False, output: str | None = None, **kwargs: Any) -> Any:
        fmt = "json" if as_json else output
        click.get_current_context().meta[KEY] = fmt
        return command(*args, as_json=fmt in ("json", "yaml"), **kwargs)

    wrapped = click.option("-o", "--output", "output", type=click.Choice(FORMATS), default=None,
                           help="json or yaml: one document on stdout; wide: more columns")(wrapper)
    return cast(F, click.option("--json", "as_json", is_flag=True, help="same as -o json")(wrapped))


def current() -> str | None:
    """The format this command was asked for: json, yaml, wide, or None (the usual table)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(KEY) if ctx is not None else None


def dump(data: Any, fmt: str) -> str:
    """`data` as one JSON or YAML document (keys sorted, times as ISO strings)."""
    plain = json.loads(json.dumps(data, default=str))
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(plain, sort_keys=True, allow_unicode=True)).rstrip("\n")
    return json.dumps(plain, indent=2, sort_keys=True)


def emit(data: Any, fmt: str) -> None:
    click.echo(dump(data, fmt))


def colour_ok(stream: Any = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def style(text: str, err: bool = False, **kwargs: Any) -> str:
    return click.style(text, **kwargs) if colour_ok(sys.stderr if err else sys.stdout) else text


def age(then: datetime, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: "45s ago", "4m ago", "3h ago", "2d ago";
    "in 5m" for a time still to come."""
    now = now or datetime.now(UTC)
    seconds = int((now - then).total_seconds())
    ahead, seconds = seconds < 0, abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size or unit == "s":
            amount = f"{seconds // size}{unit}"
            return f"in {amount}" if ahead else f"{amount} ago"
    return ""  # pragma: no cover - the loop always returns


def when(value: datetime | str | None, now: datetime | None = None) -> str:
    """`2026-12-08 00:39Z (4m ago)`; "-" for no time."""
    if value is None or value == "":
        return "-"
    then = datetime.fromisoformat(value) if isinstance(value, str) else value
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return f"{then.astimezone(UTC):%Y-%m-%d %H:%M}Z ({age(then, now)})"


def progress(message: str) -> None:
    """A progress line on stderr while something waits; only on a terminal."""
    if sys.stderr.isatty():
        click.echo(style(message, err=True, dim=True), err=True)
