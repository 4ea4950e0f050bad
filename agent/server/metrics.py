"""The daemon's Prometheus metrics, in a registry of its own (never the global one).

Counters and histograms are updated as things happen; incidents by status and proposals by
state are read from the ledger at scrape time (`watch`), so they are right whichever replica or
CLI changed them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent.model import HemostatError
from agent.model.context import utcnow

if TYPE_CHECKING:
    from agent.diagnosis.service import Diagnosis
    from agent.ledger import Ledger


HASH_DIGITS = 13  # 52 bits: a float64 gauge holds them exactly


class LedgerStates:
    """A scrape-time collector: `hemostat_incidents{status}`, `hemostat_proposals{state}`, and
    the chain's head (`hemostat_ledger_head_seq`, `hemostat_ledger_head_hash`: its hash's first
    13 hex digits as a number), so Prometheus keeps a record of the chain that a ledger rewritten
    later (an edited and re-hashed SQLite file) cannot match: `hemostat ledger verify --expect`."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def describe(self) -> list[Metric]:
        return []  # registering must not query the ledger

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self.ledger.state_counts()
        except HemostatError:
            return  # the ledger's trouble shows in /readyz; a scrape must still answer
        for name, label, what in (("hemostat_incidents", "status", "incidents"),
                                  ("hemostat_proposals", "state", "proposals")):
            family = GaugeMetricFamily(name, f"{what} in the ledger, by {label}", labels=[label])
            for key, n in sorted(counts[what].items()):
                family.add_metric([key], n)
            yield family
        try:
            head, beat = self.ledger.head(), self.ledger.heartbeat("executor")
        except HemostatError:
            return
        if beat is not None:  # old while the leader lock is held by no one who executes (M4)
            yield GaugeMetricFamily("hemostat_executor_heartbeat_age_seconds", "seconds since the "
                                    "leading executor last beat", value=(utcnow() - beat[1]).total_seconds())
        yield GaugeMetricFamily("hemostat_ledger_head_seq", "the newest event's seq", value=head.through_seq)
        yield GaugeMetricFamily("hemostat_ledger_head_hash", f"the newest event's hash: its first "
                                f"{HASH_DIGITS} hex digits as a number",
                                value=int(head.hash[:HASH_DIGITS] or "0", 16))


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.probe_seconds = Histogram("hemostat_probe_duration_seconds", "probe collect time",
                                       ["probe"], registry=r)
        self.probe_failures = Counter("hemostat_probe_failures_total", "probes that could not look",
                                      ["probe", "code"], registry=r)
        self.incidents = Counter("hemostat_incidents_opened_total", "incidents opened", ["severity"],
                                 registry=r)
        self.proposals = Counter("hemostat_proposals_total", "proposals by verdict",
                                 ["action", "verdict"], registry=r)
        self.executions = Counter("hemostat_executions_total", "executions by result",
                                  ["action", "result"], registry=r)
        self.breakers = Gauge("hemostat_breaker_open", "1 when the breaker for an endpoint is open",
                              ["endpoint"], registry=r)
        self.webhooks = Counter("hemostat_webhooks_total", "webhook deliveries by HTTP status",
                                ["result"], registry=r)
        self.alerts = Counter("hemostat_alerts_total", "alerts received, by what became of them "
                              "(recorded, duplicate: a re-delivery, unmatched: no target)", ["result"],
                              registry=r)
        self.notifications = Counter("hemostat_notifications_total", "status updates delivered, "
                                     "by channel and result", ["channel", "result"], registry=r)
        self.leader = Gauge("hemostat_leader", "1 when this daemon leads (executes)", registry=r)
        self.loop_lag = Gauge("hemostat_event_loop_lag_seconds",
                              "how late the event loop's last heartbeat ran", registry=r)

    def observe(self, diagnosis: Diagnosis) -> None:
        for obs in diagnosis.observations:
            self.probe_seconds.labels(probe=obs.probe).observe(obs.duration_s)
            if not obs.ok:
                self.probe_failures.labels(probe=obs.probe, code=obs.error_code or "error").inc()
        for proposal in diagnosis.decision.proposals:
            verdict = diagnosis.verdicts[proposal.id].decision
            self.proposals.labels(action=proposal.action, verdict=verdict).inc()
        for endpoint, state in diagnosis.breakers.items():
            self.breakers.labels(endpoint=endpoint).set(0 if state == "closed" else 1)

    def watch(self, ledger: Ledger) -> None:
        self.registry.register(LedgerStates(ledger))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
