"""A loopback app whose /metrics follow a known script, one step per scrape, for tests against the
real Prometheus: request and error counters (per handler, with a `code` label), a request-duration
histogram, and cAdvisor / kube-state-metrics CPU and memory series for one pod.

The script is `phases`: (scrapes, Phase) pairs played in order, the last repeated forever. Each
scrape adds one phase step to every counter, so ratios and quantiles are exact by construction;
`began[i]` is the wall time of the first scrape served in phase i (when Prometheus could first
have seen it). Counters start high, as in an app that has been up a while, so rate()'s
extrapolation treats every series alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.loopback import LoopbackServer, serve

HANDLERS = ("/pay", "/cart")
BUCKETS = (0.1, 0.25, 0.5, 1.0)
POD = "checkout-6f7d8c9b5-x2x4q"


@dataclass(frozen=True)
class Phase:
    """What one scrape interval adds: requests and errors per handler, observations per bucket
    (cumulative, as Prometheus histograms are), CPU seconds used, memory in use."""

    requests: int = 100
    errors: int = 1
    buckets: tuple[int, ...] = (50, 70, 90, 100)
    cpu_s: float = 0.2
    memory_bytes: int = 200 * 2**20


@dataclass
class ScriptedApp:
    phases: list[tuple[int, Phase]]
    start_count: int = 100
    scrapes: int = 0
    began: dict[int, float] = field(default_factory=dict)
    _totals: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def phase_index(self, scrape: int) -> int:
        for index, (count, _) in enumerate(self.phases):
            if scrape < count:
                return index
            scrape -= count
        return len(self.phases) - 1

    def render(self) -> str:
        with self._lock:
            index = self.phase_index(self.scrapes)
            self.began.setdefault(index, time.time())
            self.scrapes += 1
            self._advance(self.phases[index][1])
            return self._text(self.phases[index][1])

    def _add(self, key: str, amount: float) -> None:
        self._totals[key] = self._totals.get(key, amount * self.start_count) + amount

    def _advance(self, phase: Phase) -> None:
        for handler in HANDLERS:
            self._add(f'http_requests_total{{handler="{handler}",code="200"}}', phase.requests - phase.errors)
            self._add(f'http_requests_total{{handler="{handler}",code="500"}}', phase.errors)
            for le, count in zip(BUCKETS, phase.buckets, strict=True):
                self._add(f'http_request_duration_seconds_bucket{{handler="{handler}",le="{le}"}}', count)
            self._add(f'http_request_duration_seconds_bucket{{handler="{handler}",le="+Inf"}}',
                      phase.buckets[-1])
        self._add(f'container_cpu_usage_seconds_total{{namespace="default",pod="{POD}",container="app"}}',
                  phase.cpu_s)

    def _text(self, phase: Phase) -> str:
        lines = [f"{key} {value:.6f}" for key, value in sorted(self._totals.items())]
        labels = f'namespace="default",pod="{POD}",container="app"'
        lines += [f"container_memory_working_set_bytes{{{labels}}} {phase.memory_bytes}",
                  f'kube_pod_container_resource_limits{{{labels},resource="cpu"}} 1',
                  f'kube_pod_container_resource_limits{{{labels},resource="memory"}} {2**30}']
        return "\n".join(lines) + "\n"


def scripted(phases: list[tuple[int, Phase]]) -> Iterator[tuple[ScriptedApp, LoopbackServer]]:
    """Serve `phases` on loopback /metrics until the generator is closed."""
    app = ScriptedApp(phases)
    for server in serve():
        server.route("/metrics", body=app.render)
        yield app, server


def history(at: float, ratio_by_handler: dict[str, float], minutes: int = 10) -> str:
    """OpenMetrics for `promtool` backfill: request counters around `at` (unix seconds), one
    sample a second, each handler failing at its own ratio, with the job label Prometheus adds."""
    lines = []
    for handler, ratio in ratio_by_handler.items():
        for i in range(minutes * 60):
            t = int(at) - minutes * 30 + i
            done = 10_000 + 100 * i
            for code, share in (("200", 1 - ratio), ("500", ratio)):
                lines.append(f'http_requests_total{{job="app",handler="{handler}",code="{code}"}} '
                             f"{done * share:.3f} {t}")
    return "\n".join(sorted(lines, key=lambda line: (line.rsplit(" ", 2)[0], int(line.rsplit(" ", 1)[1]))))
