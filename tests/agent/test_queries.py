"""The filters of `incidents`/`proposals` (and the read API): what each keeps, and the errors
for values they cannot take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.incidents.queries import Filters
from agent.ledger import IncidentRecord
from agent.model import ConfigError

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def incident(id: str, target: str, severity: int, changed_min_ago: float, status: str = "opened") -> IncidentRecord:
    at = NOW - timedelta(minutes=changed_min_ago)
    return IncidentRecord(id, target, "t", status, severity, at, at)


RECORDS = [incident("inc-1", "checkout", 2, 5), incident("inc-2", "billing", 1, 90),
           incident("inc-3", "checkout", 3, 10, "resolved")]


@pytest.mark.parametrize(("options", "kept"), [
    ({"severity": "SEV-2"}, ["inc-1", "inc-2"]),  # that or worse
    ({"severity": "1"}, ["inc-2"]),
    ({"since": "30m"}, ["inc-1", "inc-3"]),
    ({"since": "2026-12-01T01:00:00Z"}, ["inc-1", "inc-2", "inc-3"]),
    ({"target": "checkout", "open_only": True}, ["inc-1"]),
])
def test_filters_keep_what_they_say(options: dict[str, object], kept: list[str]) -> None:
    assert [r.id for r in Filters.parse(**options, now=NOW).incidents(RECORDS)] == kept  # type: ignore[arg-type]


def test_the_query_string_round_trips() -> None:
    filters = Filters.parse("checkout", "SEV-2", "30m", True, now=NOW)
    assert Filters.from_query(filters.query(), NOW) == filters


@pytest.mark.parametrize(("options", "message"), [
    ({"severity": "SEV-9"}, "severity: SEV-9: must be SEV-1 .. SEV-4"),
    ({"since": "yesterday"}, "since: yesterday: must be a duration such as 30m"),
    ({"open_only": "maybe"}, "open: maybe: must be true or false"),
])
def test_a_bad_filter_names_itself_and_what_it_takes(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Filters.parse(**options, now=NOW)  # type: ignore[arg-type]
