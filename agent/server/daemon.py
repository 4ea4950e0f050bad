"""`hemostat run`: the in-cluster daemon.

One asyncio loop with named tasks: a sweep per target, the executor, and the alert workers.
The HTTP endpoints (Alertmanager webhook, /healthz, /readyz, /metrics; see agent.server.routes)
are served by an asyncio server whose worker threads record each alert durably in the ledger
before answering, then hand the diagnosis to the loop. Ledger I/O stays off the loop; a watchdog
fails /healthz when the loop stalls. SIGTERM sets a stop flag; in-flight work drains within a
deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import signal
import threading
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from agent.diagnosis import service
from agent.diagnosis.wiring import App
from agent.execution.approvals import EXECUTOR_ROLE, LIVE_WITHIN, live_leader
from agent.execution.executor import Executor
from agent.execution.identity_cache import ReviewCache
from agent.execution.identity_kube import KubernetesIdentities
from agent.incidents import lifecycle
from agent.incidents.intake import IntakeError, SeenAlerts, Webhook, authenticate, group, parse
from agent.incidents.notify import Delivery, Notifier, channels_from
from agent.incidents.status import StatusUpdate
from agent.ledger import IncidentRecord, Ledger, ProposalRecord
from agent.model import HemostatError, TargetSpec
from agent.model.context import utcnow
from agent.server import relook
from agent.server.announce import Announcer
from agent.server.approval_api import ApprovalApi
from agent.server.diagnose_api import DiagnoseApi
from agent.server.http import HttpServer
from agent.server.metrics import Metrics
from agent.server.routes import limits, routes, slack_routes
from agent.server.sweeps import Sweeps
from agent.server.tasks import named, warm_kube
from agent.server.watchdog import LoopWatchdog

if TYPE_CHECKING:
    from agent.server.slack_api import SlackInteractions

log = structlog.get_logger("hemostat.daemon")


@dataclass
class Daemon:
    app: App
    ledger: Ledger
    executor_interval_s: float = 2.0
    drain_deadline_s: float = 20.0
    metrics: Metrics = field(default_factory=Metrics)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # a proposal may be ready to run now
    _loop: asyncio.AbstractEventLoop | None = None
    _inflight: set[concurrent.futures.Future[Any] | asyncio.Future[Any]] = field(default_factory=set)
    _intake_lock: threading.Lock = field(default_factory=threading.Lock)
    _unmatched: SeenAlerts = field(default_factory=SeenAlerts)
    leader: bool = False
    notifier: Notifier | None = None
    slack: SlackInteractions | None = None  # Approve / Reject from Slack, when configured
    diagnoses: DiagnoseApi | None = None  # remote `hemostat diagnose --server`, made in serve()
    reviews: ReviewCache | None = None  # TokenReview/SAR with a deadline and a cache (serve())
    watchdog: LoopWatchdog = field(default_factory=LoopWatchdog)
    _announcer: Announcer | None = None
    _tried_lead: bool = False
    _slack_server: HttpServer | None = None

    @functools.cached_property
    def sweeps(self) -> Sweeps:
        return Sweeps(self.app, self.ledger, self.metrics, self.actor, self._announce_threadsafe,
                      self._pause, self.stopping)

    @property
    def actor(self) -> str:
        return self.app.config.identity

    # -- HTTP side (runs in the server's worker threads) ---------------------------------------
    def ready(self) -> tuple[bool, str]:
        """For the unauthenticated /readyz: whether, and in a word why not (the ledger's host,
        port and database go to the log, not to whoever asks)."""
        try:
            self.ledger.events(limit=1)
            idle = self._idle_leader_lock()
        except HemostatError as e:
            log.warning("not ready: ledger unavailable", error=str(e), code=e.code)
            return False, f"ledger unavailable ({e.code or 'error'}); see the daemon's log"
        if idle:
            return False, idle
        return (False, "stopping") if self.stopping.is_set() else (True, "ready")

    def _idle_leader_lock(self) -> str | None:
        """Why nothing executes, when the leader lock is held but no executor beats: any role
        that may call pg_try_advisory_lock could hold it idle and stop every execution (issue 23,
        M4). None while this daemon leads, has not tried yet, or a live leader beats."""
        if self.leader or not self._tried_lead or live_leader(self.ledger, utcnow()) is not None:
            return None
        return ("no daemon executes: the leader lock is held, but no executor heartbeat in the "
                f"last {LIVE_WITHIN.total_seconds():g} s (a session holding the lock idle?)")

    def receive_webhook(self, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """Validate, record and schedule. Returns the HTTP status and JSON answer: 202 when
        something was new, 200 when every alert was a re-delivery (acknowledged, not recorded
        again), 4xx for a payload that will never be right, 503 to make the sender retry."""
        try:
            if not self.app.config.intake.webhook:
                raise IntakeError(404, "the Alertmanager webhook is off (intake.webhook: false)")
            token = self.app.config.intake.token.resolve() if self.app.config.intake.token else None
            authenticate(authorization, token)
            webhook = parse(body, self.app.config.intake.max_body_bytes)
            if self.stopping.is_set():
                raise IntakeError(503, "shutting down; Alertmanager will retry")
            with self._intake_lock:  # two deliveries of one alert at once must not both be news
                answer = self._accept(webhook)
            code = 202 if answer["recorded"] else 200
            log.info("webhook received", source=webhook.source, status=webhook.status,
                     alerts=answer["accepted"], recorded=answer["recorded"], duplicates=answer["duplicates"],
                     incident_ids=answer["incidents"])
            self.metrics.webhooks.labels(result=str(code)).inc()
            return code, answer
        except IntakeError as e:
            self.metrics.webhooks.labels(result=str(e.status)).inc()
            log.warning("webhook refused", status=e.status, reason=str(e))
            return e.status, {"error": str(e)}
        except HemostatError as e:  # ledger full or unreachable: make Alertmanager retry
            self.metrics.webhooks.labels(result="503").inc()
            log.error("webhook not recorded", error=str(e), code=e.code)
            return 503, {"error": f"could not record the alert ({e.code}); retry"}

    def approval_api(self) -> ApprovalApi:
        """The approval API's handlers, checking tokens against the daemon's cluster."""
        return ApprovalApi(self.app, self.ledger, self._reviews())

    def _reviews(self) -> ReviewCache:
        if self.reviews is None:
            audiences = tuple(self.app.config.approval_api.audiences)
            timeout_s = self.app.config.kubernetes.request_timeout_s
            self.reviews = ReviewCache(KubernetesIdentities(self.app.kube_provider(), audiences, timeout_s),
                                       timeout_s=timeout_s)
        return self.reviews

    def _accept(self, webhook: Webhook) -> dict[str, Any]:
        now, incidents, recorded, dups = utcnow(), [], 0, 0
        if webhook.truncatedAlerts:
            log.warning("alert group truncated by the sender", group=webhook.groupKey[:200],
                        truncated=webhook.truncatedAlerts)
        for target, alerts in group(webhook, self.app.config):
            if target is None:
                news = self._unmatched.news(alerts)
                self.metrics.alerts.labels(result="unmatched").inc(len(news))
                if news:
                    lifecycle.on_unmatched(self.ledger, webhook, news, now)
                    log.warning("alerts match no target", alerts=sorted({a.labels.get("alertname", "?")
                                                                          for a in news}))
                recorded, dups = recorded + len(news), dups + len(alerts) - len(news)
                continue
            outcome = lifecycle.on_alerts(self.ledger, webhook, target, alerts, now, webhook.source)
            self.metrics.alerts.labels(result="recorded").inc(outcome.recorded)
            self.metrics.alerts.labels(result="duplicate").inc(outcome.duplicates)
            recorded, dups = recorded + outcome.recorded, dups + outcome.duplicates
            if outcome.incident is None:
                continue
            incidents.append(outcome.incident.id)
            if outcome.recorded:
                self._announce_threadsafe(outcome.incident.id)
            if outcome.diagnose:
                incident = outcome.incident
                self.metrics.incidents.labels(severity=f"SEV-{incident.severity}").inc()
                fired = [a.model_dump(mode="json") for a in alerts if a.status == "firing"]
                self._schedule(self.diagnose_incident(target, incident, fired), f"alert:{incident.id}")
        return {"accepted": len(webhook.alerts), "recorded": recorded, "duplicates": dups,
                "incidents": incidents}

    def _schedule(self, coro: Awaitable[Any], name: str) -> None:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(named(coro, name), self._loop)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)

    # -- loop side ------------------------------------------------------------------------------
    async def diagnose_incident(self, target: TargetSpec, incident: IncidentRecord,
                                alerts: list[dict[str, Any]] | None = None) -> None:
        """`alerts`: what fired (probes such as `prometheus` re-check an alert's own expression)."""
        history = await asyncio.to_thread(service.history_from, self.ledger, self.app)
        past = await asyncio.to_thread(service.past_findings, self.ledger, target.name)
        # One clock: the diagnosis happens now, however long ago the alert started.
        result = await service.diagnose(self.app, target, None, history, incident.id, alerts or (),
                                        past=past)
        self.metrics.observe(result)
        await asyncio.to_thread(self._record, result, incident)
        if result.triage.look_again_at is not None:
            await self._look_again(target, incident, alerts or [], result)

    def _record(self, result: service.Diagnosis, incident: IncidentRecord) -> None:
        _, changed = lifecycle.record_diagnosis(self.app, self.ledger, result, self.actor, utcnow(), incident)
        if changed:
            self._announce_threadsafe(incident.id)
        self._wake_executor_threadsafe()  # an auto-approved proposal runs now, not at the next pass

    async def _look_again(self, target: TargetSpec, incident: IncidentRecord, alerts: list[dict[str, Any]],
                          result: service.Diagnosis) -> None:
        """Too few requests to judge: say when it will be looked at again, and do it then."""
        at = result.triage.look_again_at
        assert at is not None
        if not await relook.record(self.ledger, incident, at, result.triage.headline, self.actor):
            return
        self._announce_threadsafe(incident.id)

        async def later() -> None:
            if await relook.wait_until(at, self.stopping):
                await self.diagnose_incident(target, incident, alerts)

        task = asyncio.create_task(named(later(), f"look-again:{incident.id}"))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _wake_executor_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake.set)

    # -- status updates -------------------------------------------------------------------------
    def _announce_threadsafe(self, incident_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.announce, incident_id)

    def announce(self, incident_id: str) -> None:
        """Ask for the incident's status update (loop thread); rendered and sent off the loop."""
        if self.notifier is None or not self.notifier.channels:  # nobody to tell: render nothing
            return
        if self._announcer is None:
            self._announcer = Announcer(self.ledger, self.notifier.dispatch, utcnow,
                                        self.app.config.executor.status_update_minutes,
                                        self.app.config.roles)
        self._announcer.request(incident_id)

    async def drain_announcements(self, timeout_s: float | None = None) -> None:
        if self._announcer is not None:
            await self._announcer.drain(timeout_s)

    def _delivered(self, update: StatusUpdate, delivery: Delivery) -> None:
        """Record a delivery outcome (called on the loop): the write goes to a worker thread."""
        self.metrics.notifications.labels(channel=delivery.channel,
                                          result="ok" if delivery.ok else "failed").inc()
        assert self._loop is not None
        future = self._loop.run_in_executor(None, self._record_delivery, update, delivery)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)

    def _record_delivery(self, update: StatusUpdate, delivery: Delivery) -> None:
        self.ledger.append("notification", self.actor, utcnow(), incident_id=update.incident_id,
                           data=delivery.to_json())

    async def _cadence_loop(self) -> None:
        """While an incident is open, a status update every `status_update_minutes`."""
        minutes = self.app.config.executor.status_update_minutes
        while not self.stopping.is_set():
            await self._pause(minutes * 60)
            if self.stopping.is_set():
                return
            for incident in await asyncio.to_thread(self.ledger.incidents, open_only=True):
                self.announce(incident.id)

    async def sweep(self, target: TargetSpec) -> None:
        """One sweep of one target; skipped if the previous one is still running."""
        await self.sweeps.sweep(target)

    async def _executor_loop(self, executor: Executor) -> None:
        while not self.stopping.is_set():
            try:
                await self._execute_as_leader(executor)
            except HemostatError as e:
                log.warning("executor pass failed", error=str(e))
            await relook.nap(self.executor_interval_s, self.wake, self.stopping)  # or an approval wakes it

    async def _execute_as_leader(self, executor: Executor) -> None:
        was_leader = self.leader
        self.leader = await asyncio.to_thread(self.ledger.try_lead, self.actor)
        self._tried_lead = True
        self.metrics.leader.set(1 if self.leader else 0)
        if not self.leader:
            return
        await asyncio.to_thread(self.ledger.beat, EXECUTOR_ROLE, self.actor, utcnow())
        for pid in await executor.reconcile():  # every pass: a young claim is reconciled later
            log.warning("reconciled interrupted execution", proposal=pid, new_leader=not was_leader)
        for pid in await executor.run_once():
            incident_id = await asyncio.to_thread(self._after_execution, pid)
            if incident_id:
                self.announce(incident_id)

    def _after_execution(self, pid: str) -> str | None:
        record = self.ledger.proposal(pid)
        self.metrics.executions.labels(action=record.proposal.action, result=record.state).inc()
        if record.proposal.incident_id:
            lifecycle.after_execution(self.ledger, record, self.actor, utcnow())
        return record.proposal.incident_id

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=max(seconds, 0))

    async def serve(self, host: str, port: int) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self.stopping.set)
        buttons = self.app.config.slack is not None  # Slack updates offer Approve / Reject
        self.notifier = Notifier(channels_from(self.app.config.notifiers, buttons),
                                 on_result=self._delivered)
        self.metrics.watch(self.ledger)
        self.slack = self._slack_interactions()
        self.diagnoses = DiagnoseApi(self.app, self.ledger, self._reviews())
        if any(t.deployment for t in self.app.config.targets):  # build the client off the loop, once
            await asyncio.to_thread(warm_kube, self.app)
        server = HttpServer(routes(self), limits(self.app.config.intake, min(5.0, self.drain_deadline_s)))
        await server.start(host, port)
        self._slack_server = await self._slack_listener()
        log.info("hemostat running", listen=f"{host}:{server.port}",
                 targets=len(self.app.config.targets), policy=str(self.app.policy_path),
                 mode=self.app.policy.mode)
        executor = Executor(self.app, self.ledger, self.actor)
        sweeping = self.app.config.targets if self.app.config.sweeps else []
        tasks = [asyncio.create_task(self.sweeps.loop(t), name=f"sweep:{t.name}") for t in sweeping]
        tasks.append(asyncio.create_task(self._executor_loop(executor), name="executor"))
        tasks.append(asyncio.create_task(self._cadence_loop(), name="status-cadence"))
        self.watchdog.on_beat = self.metrics.loop_lag.set
        tasks.append(asyncio.create_task(self.watchdog.run(self.stopping), name="watchdog"))
        await self.stopping.wait()
        await self._drain(server, tasks)

    async def _slack_listener(self) -> HttpServer | None:
        """`slack.listen`: Slack's endpoint on a port of its own (agent.server.routes.slack_routes)."""
        config = self.app.config.slack
        if config is None or config.listen is None:
            return None
        host, _, port = config.listen.rpartition(":")
        bounds = limits(self.app.config.intake, min(5.0, self.drain_deadline_s))
        server = HttpServer(slack_routes(self), bounds)
        await server.start(host, int(port))
        log.info("slack interactions listening", listen=f"{host}:{server.port}")
        return server

    def _slack_interactions(self) -> SlackInteractions | None:
        config = self.app.config.slack
        if config is None:
            return None
        from agent.execution.identity import Approving
        from agent.server.slack_api import SlackInteractions, ledger_decider

        def decided(record: ProposalRecord) -> None:
            if record.proposal.incident_id:
                self._announce_threadsafe(record.proposal.incident_id)
            self._wake_executor_threadsafe()

        return SlackInteractions(config.signing_secret.resolve(), config.users,
                                 ledger_decider(self.ledger, Approving.of(self.app), utcnow, decided))

    async def _drain(self, server: HttpServer, tasks: list[asyncio.Task[None]]) -> None:
        """Stop taking requests, then give in-flight work the rest of the deadline."""
        log.info("stopping: draining in-flight work", deadline_s=self.drain_deadline_s)
        deadline = asyncio.get_running_loop().time() + self.drain_deadline_s
        await server.stop()
        if self._slack_server is not None:
            await self._slack_server.stop()
        if self.reviews is not None:
            self.reviews.close()
        pending = [asyncio.wrap_future(f) for f in list(self._inflight)] + tasks
        left = max(0.0, deadline - asyncio.get_running_loop().time())
        done, late = await asyncio.wait(pending, timeout=left) if pending else (set(), set())
        for task in late:
            task.cancel()
        left = max(1.0, deadline - asyncio.get_running_loop().time())
        await self.drain_announcements(timeout_s=left / 2)
        if self.notifier is not None:
            await self.notifier.drain(timeout_s=left / 2)
        log.info("stopped", finished=len(done), cancelled=len(late))
