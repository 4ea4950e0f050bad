"""Figure 3, alert to proposal: from the Alertmanager webhook POST to the proposal in the ledger.

`hemostat run` is started as a process (sweeps off) with one target per alert, so every alert
opens its own incident. Alerts are posted at a steady rate from this process; a watcher polls the
daemon's SQLite ledger (read-only, every few milliseconds) for each target's first proposal. Each
target's diagnosis is git-deploys (a deploy 4 minutes ago) plus app-metrics (answers 20 ms late,
scraped twice 100 ms apart), so the floor is one such diagnosis, measured in-process beforehand.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from agent.diagnosis.runner import collect_all
from agent.diagnosis.service import probe_context
from agent.diagnosis.wiring import build_app
from agent.model.config import load_config
from bench.incident import deploy_repo, registry, write_config
from bench.servers import DelayedHttp, app_server
from bench.timing import median, ms, percentile
from tests.agent.daemon_harness import DaemonProcess, alert_payload, start_daemon

APP_DELAY_S = 0.02
SCRAPE_GAP_S = 0.1
REPOS = 4
POLL_S = 0.005
SETTLE_TIMEOUT_S = 60


def _targets(n: int, app: DelayedHttp, repos: list[Path]) -> list[dict[str, Any]]:
    return [{"name": f"svc-{i:04d}", "deployment": f"svc-{i:04d}", "probes": ["git-deploys", "app-metrics"],
             "deploy_repo": {"path": str(repos[i % len(repos)])},
             "metrics": {"url": f"{app.url}/metrics", "scrape_interval_s": SCRAPE_GAP_S}}
            for i in range(n)]


class ProposalWatcher:
    """Polls the ledger file for proposals; remembers when each target's first one appeared."""

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="proposal-watcher", daemon=True)

    def start(self) -> ProposalWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        conn = sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True, timeout=1)
        try:
            while not self._stop.is_set():
                with_new = conn.execute("SELECT DISTINCT target FROM proposals").fetchall()
                now = time.perf_counter()
                for (target,) in with_new:
                    self.seen.setdefault(target, now)
                self._stop.wait(POLL_S)
        finally:
            conn.close()


def _post(daemon: DaemonProcess, payload: dict[str, Any]) -> float:
    """POST the webhook; returns when it was sent (perf_counter). The 202 must come back."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(daemon.url + "/webhook/alertmanager", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    sent = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 202:
            raise RuntimeError(f"webhook answered {answer.status}")
    return sent


def _floor(config: Path) -> float:
    """One target's diagnosis alone, in-process: what no daemon path can beat."""
    app = build_app(load_config(config), registry())
    target = app.config.targets[0]

    async def once() -> float:
        started = time.perf_counter()
        await collect_all(target, app.registry, probe_context(app))
        return time.perf_counter() - started

    return median([asyncio.run(once()) for _ in range(3)])


def _send_all(daemon: DaemonProcess, n: int, rate: float) -> tuple[dict[str, float], list[float]]:
    sent, acks = {}, []
    start = time.perf_counter()
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))  # steady, open-loop pacing
        target = f"svc-{i:04d}"
        payload = alert_payload(target=target, group_key=f"{{}}:{{alertname=\"HighErrorRate\",target=\"{target}\"}}",
                                fingerprint=f"fp{i:06d}", starts_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        sent[target] = _post(daemon, payload)
        acks.append(time.perf_counter() - sent[target])
    return sent, acks


def _wait_for(watcher: ProposalWatcher, n: int) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while len(watcher.seen) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def run(quick: bool) -> dict[str, Any]:
    n, rate = (20, 10.0) if quick else (200, 10.0)
    app = app_server(APP_DELAY_S)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
            work = Path(tmp)
            repos = [deploy_repo(work / f"deploys-{i}", [4]) for i in range(REPOS)]
            config = write_config(work, _targets(n, app, repos), sweeps=False)
            floor = _floor(config)
            daemon = start_daemon(config)
            watcher = ProposalWatcher(work / "ledger.db").start()
            try:
                sent, acks = _send_all(daemon, n, rate)
                _wait_for(watcher, n)
            finally:
                watcher.stop()
                daemon.stop(signal.SIGTERM)
    finally:
        app.stop()
    return _summary(sent, watcher.seen, acks, floor, rate)


def _summary(sent: dict[str, float], seen: dict[str, float], acks: list[float], floor: float,
             rate: float) -> dict[str, Any]:
    latencies = [seen[t] - sent[t] for t in sent if t in seen]
    if not latencies:
        raise RuntimeError("no alert got a proposal")
    p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
    return {
        "alerts": len(sent), "proposals": len(latencies), "missing": len(sent) - len(latencies),
        "rate_per_s": rate, "poll_ms": ms(POLL_S),
        "p50_ms": ms(p50), "p95_ms": ms(p95), "p99_ms": ms(p99), "max_ms": ms(max(latencies)),
        "webhook_ack_p50_ms": ms(percentile(acks, 50)), "webhook_ack_p99_ms": ms(percentile(acks, 99)),
        "floor_ms": ms(floor),
        "ratio": round(p50 / floor, 3),
        "ratio_means": "p50 alert-to-proposal / one diagnosis alone in-process (the floor)",
        "tail_ratio": round(p99 / p50, 3),
    }
