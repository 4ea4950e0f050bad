"""Structured logs: JSON lines off a TTY, and secrets masked in every value."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from agent.logs import configure
from agent.model import quietlog


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    quietlog.enable(False)  # configure() turned the ledger's and probes' lines on for this process


def test_log_lines_are_json_with_dsn_passwords_and_tokens_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info")
    log = structlog.get_logger("hemostat.test")
    log.info("ledger unavailable", dsn="postgresql://hemostat:hunter2@db:5432/ledger",
             header="Authorization: Bearer abc.def.ghi", detail="password=s3cr3t host=db")
    log.debug("not shown at info")
    [line] = capsys.readouterr().err.strip().splitlines()
    event = json.loads(line)
    assert event["event"] == "ledger unavailable" and event["level"] == "info"
    assert event["dsn"] == "postgresql://hemostat:***@db:5432/ledger"
    assert "abc.def.ghi" not in line and "s3cr3t" not in line and "hunter2" not in line
