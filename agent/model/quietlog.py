"""Logging that costs a one-shot command nothing: a line goes through structlog only once the
process has set it up (the daemon, `agent.logs.configure`, or a test's `capture_logs`). A CLI
command that never configured structlog neither imports it (about 100 ms) nor prints log lines
into its output."""

from __future__ import annotations

import sys
from typing import Any


def emit(logger: str, level: str, event: str, **fields: Any) -> None:
    """`structlog.get_logger(logger).<level>(event, **fields)`, if structlog is set up."""
    structlog = sys.modules.get("structlog")
    if structlog is None or not structlog.is_configured():
        return
    getattr(structlog.get_logger(logger), level)(event, **fields)
