""""Need more data, looking again at HH:MM", acted on: when a diagnosis found too few requests to
judge (triage's `look_again_at`), the daemon records a `diagnosis_scheduled` event (the status
update says when) and diagnoses the incident again at that time, at most MAX_LOOKS times per
incident, and not once it is resolved or the daemon stops. Never silence.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from agent.ledger import IncidentRecord, Ledger
from agent.model.context import utcnow

MAX_LOOKS = 5  # re-diagnoses of one incident for "need more data" before it waits for news


async def record(ledger: Ledger, incident: IncidentRecord, at: datetime, headline: str, actor: str) -> bool:
    """Record the look-again; False when none is due (MAX_LOOKS already, or resolved)."""
    looks = await asyncio.to_thread(ledger.events, incident_id=incident.id, types=("diagnosis_scheduled",))
    current = await asyncio.to_thread(ledger.incident, incident.id)
    if len(looks) >= MAX_LOOKS or current.status == "resolved":
        return False
    await asyncio.to_thread(ledger.append, "diagnosis_scheduled", actor, utcnow(), incident_id=incident.id,
                            data={"at": at.isoformat(), "reason": headline})
    return True


async def wait_until(at: datetime, stopping: asyncio.Event) -> bool:
    """Sleep until `at`; False when the daemon began stopping first."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=max((at - utcnow()).total_seconds(), 0))
    except TimeoutError:
        return True
    return False


async def nap(seconds: float, wake: asyncio.Event, stopping: asyncio.Event) -> None:
    """The executor's pause between passes: cut short by a wake-up (an approval) or a stop."""
    waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping.wait())]
    await asyncio.wait(waits, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    wake.clear()
