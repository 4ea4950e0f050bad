"""Real services for the tests (PostgreSQL, Redis), and the one rule for a missing one: skip on a
developer's machine, fail the run when HEMOSTAT_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import socket

import pytest


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def missing(reason: str, remedy: str) -> None:
    """Skip, or fail with `remedy` when the run requires every service."""
    if os.environ.get("HEMOSTAT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and HEMOSTAT_REQUIRE_SERVICES=1 requires it ({remedy})", pytrace=False)
    pytest.skip(reason)
