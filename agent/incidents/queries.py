"""Which incidents and proposals an engineer asked to see: `--target`, `--severity`, `--since`,
`--open`, the same whether the CLI reads the ledger itself or asks the daemon (`GET
/v1/incidents?target=…&severity=…&since=…&open=true`, agent.server.read_api).

`severity` is a floor: `SEV-2` shows SEV-1 and SEV-2. `since` is a duration back from now
(`90s`, `30m`, `2h`, `7d`) or an ISO-8601 time, and keeps what changed since then. A bad value
is a ConfigError naming the filter and what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.ledger import IncidentRecord, ProposalRecord
from agent.model import ConfigError

DURATION = re.compile(r"(\d+)([smhd])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SEVERITY = re.compile(r"(?:sev-?)?([1-4])", re.IGNORECASE)


@dataclass(frozen=True)
class Filters:
    target: str | None = None
    severity: int | None = None  # the least severe to show (SEV-2: 1 and 2)
    since: datetime | None = None
    open_only: bool = False

    @classmethod
    def parse(cls, target: str | None = None, severity: str | None = None, since: str | None = None,
              open_only: bool | str = False, *, now: datetime) -> Filters:
        """From the CLI's options or the query string (`open` as "true"/"false" there)."""
        if isinstance(open_only, str):
            if open_only.lower() not in ("true", "false", "1", "0", ""):
                raise ConfigError("open", open_only, "must be true or false")
            open_only = open_only.lower() in ("true", "1")
        return cls(target or None, parse_severity(severity), parse_since(since, now), open_only)

    @classmethod
    def from_query(cls, query: Mapping[str, str], now: datetime) -> Filters:
        return cls.parse(query.get("target"), query.get("severity"), query.get("since"),
                         query.get("open", ""), now=now)

    def query(self) -> dict[str, str]:
        """The query string the daemon's read API takes for these filters."""
        out = {"target": self.target or "", "severity": str(self.severity or ""),
               "since": self.since.isoformat() if self.since else "",
               "open": "true" if self.open_only else ""}
        return {k: v for k, v in out.items() if v}

    def incidents(self, records: Sequence[IncidentRecord]) -> list[IncidentRecord]:
        return [r for r in records if (not self.target or r.target == self.target)
                and (self.severity is None or r.severity <= self.severity)
                and (self.since is None or r.updated_at >= self.since)
                and (not self.open_only or r.status != "resolved")]

    def proposals(self, records: Sequence[ProposalRecord],
                  severity_of: Mapping[str, int]) -> list[ProposalRecord]:
        """`severity_of`: incident id -> severity (a proposal has its incident's severity; one
        from a diagnosis outside any incident passes only when no severity is asked for)."""
        def severe(r: ProposalRecord) -> bool:
            sev = severity_of.get(r.proposal.incident_id or "")
            return self.severity is None or (sev is not None and sev <= self.severity)

        return [r for r in records if (not self.target or r.proposal.target == self.target) and severe(r)
                and (self.since is None or r.updated_at >= self.since)]


def parse_severity(value: str | None) -> int | None:
    if not value:
        return None
    found = SEVERITY.fullmatch(value.strip())
    if not found:
        raise ConfigError("severity", value, "must be SEV-1 .. SEV-4 (or 1 .. 4)")
    return int(found.group(1))


def parse_since(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    found = DURATION.fullmatch(value.strip())
    if found:
        return now - timedelta(seconds=int(found.group(1)) * UNITS[found.group(2)])
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("since", value, "must be a duration such as 30m, 2h, 7d, or an ISO-8601 "
                          "time such as 2026-05-01T12:00:00Z") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
