"""The daemon's own look at each target every `sweep_interval_s`, between alerts.

A sweep that finds trouble records the diagnosis (a new incident, or news for the open one); a
sweep that finds nothing resolves an incident that was only being monitored, unless its alert is
still firing. One sweep per target at a time, at most `max_concurrent_sweeps` together. Owned by
`agent.server.daemon`, which passes in how to announce an incident and how to pause.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from agent.diagnosis import service
from agent.diagnosis.wiring import App
from agent.incidents import lifecycle
from agent.incidents.situation import firing
from agent.ledger import IncidentRecord, Ledger
from agent.model import HemostatError, TargetSpec
from agent.model.context import utcnow
from agent.server.metrics import Metrics

log = structlog.get_logger("hemostat.daemon")


@dataclass
class Sweeps:
    app: App
    ledger: Ledger
    metrics: Metrics
    actor: str
    announce: Callable[[str], None]  # thread-safe: called from worker threads
    pause: Callable[[float], Awaitable[None]]  # returns early when the daemon stops
    stopping: asyncio.Event
    _sweeping: set[str] = field(default_factory=set)
    _slots: asyncio.Semaphore | None = None

    async def sweep(self, target: TargetSpec) -> None:
        """One sweep of one target; skipped if the previous one is still running."""
        if target.name in self._sweeping:
            return
        self._sweeping.add(target.name)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.app.config.max_concurrent_sweeps)
        try:
            async with self._slots:
                history = await asyncio.to_thread(service.history_from, self.ledger, self.app)
                past = await asyncio.to_thread(service.past_findings, self.ledger, target.name)
                result = await service.diagnose(self.app, target, utcnow(), history, past=past)
            self.metrics.observe(result)
            await asyncio.to_thread(self._after_sweep, target, result)
        finally:
            self._sweeping.discard(target.name)

    def _after_sweep(self, target: TargetSpec, result: service.Diagnosis) -> None:
        incident = self.ledger.find_open_incident(target=target.name)
        if result.triage.severity is None:
            if incident is not None and incident.status == "monitoring" and not self._still_firing(incident):
                self.ledger.set_incident_status(incident.id, "resolved", self.actor, utcnow(),
                                                data={"reason": "sweep found no problem while monitoring"})
                self.announce(incident.id)
            return
        if incident is None:
            self.metrics.incidents.labels(severity=result.triage.severity.label()).inc()
        recorded, changed = lifecycle.record_diagnosis(self.app, self.ledger, result, self.actor, utcnow(),
                                                       incident)
        if recorded is not None and changed:  # the cadence loop covers "still the same"
            self.announce(recorded.id)

    def _still_firing(self, incident: IncidentRecord) -> bool:
        """An alert still firing keeps the incident open, whatever a sweep sees."""
        return bool(firing(lifecycle.tracked_for(self.ledger, incident.id)))

    async def loop(self, target: TargetSpec) -> None:
        await self.pause(random.uniform(0, min(target.sweep_interval_s, 10)))  # spread the first sweeps
        while not self.stopping.is_set():
            try:
                await self.sweep(target)
            except HemostatError as e:
                log.warning("sweep failed", target=target.name, error=str(e))
            jitter = random.uniform(-0.1, 0.1) * target.sweep_interval_s
            await self.pause(target.sweep_interval_s + jitter)
