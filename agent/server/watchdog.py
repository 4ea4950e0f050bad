"""Event-loop watchdog: a heartbeat task on the loop and the verdict `/healthz` gives from it.

A loop that is busy (a long callback, a queue of them) runs the heartbeat late or not at all.
`/healthz` then fails, so the liveness probe restarts a wedged daemon instead of trusting a
server that still answers between stalls. The clock is injected so tests need no real stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoopWatchdog:
    """Healthy while the heartbeat is on time. Units in the names."""

    stall_s: float = 10.0  # a heartbeat this late (or missing this long) means a wedged loop
    interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    last_beat: float = field(default=-1.0)
    lateness_s: float = 0.0
    on_beat: Callable[[float], None] | None = None  # receives each beat's lateness (a metric)

    def beat(self) -> None:
        """Record a heartbeat; lateness is how far past its interval it came."""
        now = self.clock()
        if self.last_beat >= 0:
            self.lateness_s = max(0.0, now - self.last_beat - self.interval_s)
        self.last_beat = now
        if self.on_beat is not None:
            self.on_beat(self.lateness_s)

    def health(self) -> tuple[bool, str]:
        if self.last_beat < 0:
            return True, "starting"
        silent = self.clock() - self.last_beat - self.interval_s
        stall = max(self.lateness_s, silent)
        if stall > self.stall_s:
            return False, f"event loop stalled {stall:.1f} s (limit {self.stall_s:g} s)"
        return True, "ok"

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.beat()
            await asyncio.sleep(self.interval_s)
