"""Real services for the tests (PostgreSQL, Redis), and the one rule for a missing one: skip on a
developer's machine, fail the run when HEMOSTAT_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import socket
import subprocess

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


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Stop a server process: SIGTERM, then SIGKILL if it has not exited in `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
