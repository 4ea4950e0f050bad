"""Sweeps in-process: bounded concurrency, so a burst of targets queues instead of crowding."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.diagnosis.registry import Registry
from agent.diagnosis.wiring import build_app
from agent.ledger.sqlite import SqliteLedger
from agent.model import DependencySpec, TargetSpec
from agent.model.config import Config
from agent.server.daemon import Daemon
from tests.loopback import LoopbackServer


def test_sweeps_of_many_targets_run_at_most_max_concurrent_at_once(tmp_path: Path, loopback: LoopbackServer) -> None:
    """A burst of sweeps queues instead of crowding the loop (which would inflate latencies)."""
    url = loopback.route("/health", delay_s=0.2)
    targets = [TargetSpec(name=f"t{i}", dependencies=[DependencySpec(name="dep", url=url)])  # type: ignore[arg-type]
               for i in range(6)]
    app = build_app(Config(targets=targets, max_concurrent_sweeps=2), Registry.discover())
    daemon = Daemon(app, SqliteLedger(tmp_path / "ledger.db"))

    async def burst() -> None:
        await asyncio.gather(*(daemon.sweep(t) for t in targets))

    asyncio.run(burst())
    assert loopback.hits["/health"] == 6
    assert loopback.max_inflight == 2


def test_repeated_sweeps_of_a_failing_target_announce_once(tmp_path: Path, loopback: LoopbackServer) -> None:
    """A status update goes out when the incident opens or changes; the cadence covers the rest."""
    from agent.incidents.notify import Notifier
    from agent.incidents.status import StatusUpdate

    sent: list[StatusUpdate] = []

    class Catcher:
        name = "catcher"

        async def send(self, update: StatusUpdate) -> None:
            sent.append(update)

    url = loopback.route("/health", status=503)
    target = TargetSpec(name="checkout", dependencies=[DependencySpec(name="stripe", url=url)])  # type: ignore[arg-type]
    app = build_app(Config(targets=[target]), Registry.discover())
    daemon = Daemon(app, SqliteLedger(tmp_path / "ledger.db"))

    async def three_sweeps() -> None:
        daemon._loop = asyncio.get_running_loop()
        daemon.notifier = Notifier([Catcher()])
        for _ in range(3):
            await daemon.sweep(target)
            await asyncio.sleep(0)  # let the announcement scheduled from the worker thread run
            await daemon.drain_announcements(timeout_s=5)
        await daemon.notifier.drain(timeout_s=5)

    asyncio.run(three_sweeps())
    [incident] = daemon.ledger.incidents()
    assert len([e for e in daemon.ledger.events(incident_id=incident.id) if e.type == "triaged"]) == 3
    assert [u.status for u in sent] == ["Investigating"]
