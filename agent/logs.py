"""structlog set-up: JSON lines in the cluster, a console renderer on a TTY; secrets redacted."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from agent.model import redact
from agent.model.quietlog import enable


def redact_values(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A processor: mask DSN passwords, bearer tokens and `password=` pairs in every string."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def configure(level: str = "info", fmt: str | None = None) -> None:
    """`fmt`: "json" (one object a line) or "console"; None: console on a terminal, else json.
    Console colours follow NO_COLOR."""
    console = sys.stderr.isatty() if fmt is None else fmt == "console"
    colours = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=colours) if console
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    enable()  # the ledger's events and the probes' lines (agent.model.quietlog) may log now
