"""Logging that costs a one-shot command nothing: a line goes through structlog only in a process
that asked for logs (the daemon, through `agent.logs.configure`, or a test that `enable`s it). A
CLI command neither imports structlog (about 100 ms) nor prints log lines into its stdout, even
when something else in the process left structlog configured."""

from __future__ import annotations

import sys
from typing import Any

_enabled = False


def enable(on: bool = True) -> None:
    """Let `emit` log (agent.logs.configure does, once structlog writes where it should)."""
    global _enabled
    _enabled = on


def emit(logger: str, level: str, event: str, **fields: Any) -> None:
    """`structlog.get_logger(logger).<level>(event, **fields)`, if this process logs."""
    structlog = sys.modules.get("structlog")
    if not _enabled or structlog is None:
        return
    getattr(structlog.get_logger(logger), level)(event, **fields)
