"""Status announcements, coalesced and rendered off the event loop.

Every accepted webhook, diagnosis and execution asks to announce its incident. Under an alert
flood that is thousands of requests for a handful of incidents, so at most one announcement per
incident waits at a time; it is rendered in a worker thread from the event types a status update
uses (filtered in SQL: never a long incident's observations, findings and notifications), and
then handed to the notifier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from agent.incidents.notify import drain_tasks
from agent.incidents.status import StatusUpdate, status_update
from agent.ledger import Event, Ledger
from agent.model import HemostatError

log = structlog.get_logger("hemostat.daemon")
# What `status_update` reads (agent.incidents.status and agent.incidents.situation): the timeline lines,
# the latest
# triage, the alerts' states, status changes, roles and every mitigation step.
STATUS_TYPES = (
    "incident_opened", "alert_fired", "alert_resolved", "triaged", "status_changed", "role_assigned",
    "proposal", "approval", "proposal_approved", "proposal_rejected", "proposal_expired",
    "execution_started", "execution_finished", "verification", "proposal_succeeded",
    "proposal_failed", "proposal_reverted", "escalated",
)


def status_events(ledger: Ledger, incident_id: str) -> list[Event]:
    return ledger.events(incident_id=incident_id, types=STATUS_TYPES)


@dataclass
class Announcer:
    """Call `request` on the loop; `dispatch` receives the rendered update on the loop."""

    ledger: Ledger
    dispatch: Callable[[StatusUpdate], Any]
    now: Callable[[], datetime]
    cadence_minutes: float
    roles: Mapping[Any, str] | None = None
    _waiting: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def request(self, incident_id: str) -> None:
        if incident_id in self._waiting:  # the waiting one will read this change too
            return
        self._waiting.add(incident_id)
        task = asyncio.create_task(self._announce(incident_id), name=f"announce:{incident_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, incident_id: str) -> None:
        try:
            update = await asyncio.to_thread(self._render, incident_id)
        except HemostatError as e:  # the ledger is down: the cadence loop announces later
            log.warning("status update not rendered", incident=incident_id, error=str(e))
            return
        self.dispatch(update)

    def _render(self, incident_id: str) -> StatusUpdate:
        self._waiting.discard(incident_id)  # before reading: a later change asks again
        incident = self.ledger.incident(incident_id)
        return status_update(incident, status_events(self.ledger, incident_id), self.now(),
                             self.cadence_minutes, self.roles)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Finish waiting announcements (shutdown, tests); cancel what is left at the deadline."""
        await drain_tasks(self._tasks, timeout_s)
