"""Figure 3b, alert to proposal through the real chain: app -> Prometheus 2.42 -> Alertmanager
0.25 -> `hemostat run` (tests/agent/alert_chain.py), one target failing at a time.

Two spans per alert, both ending when the target's first proposal is in the daemon's ledger
(a watcher polls the SQLite file every few milliseconds):
- firing -> proposal: from Prometheus's `activeAt` for the alert (rule `for: 0s`), so it includes
  Prometheus's evaluation, its push to Alertmanager and Alertmanager's `group_wait` (1 s here);
- delivery -> proposal: from the daemon recording the delivery (`alert_fired`), i.e. Hemostat's
  own part. The floor is one diagnosis of the target alone, in-process, as in figure 3.
Each target's metrics come from the chain's Prometheus through the `prometheus` probe (error
ratio, SLO burn windows, onset by range query, baselines `offset 1d` and `offset 1w`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.alerts import ProposalWatcher, _floor
from bench.incident import deploy_repo, write_config
from bench.timing import ms, percentile
from tests.agent.alert_chain import Chain, ErrorApp, start_chain
from tests.agent.daemon_harness import TOKEN
from tests.loopback import LoopbackServer, serve
from tests.services import free_port
from tests.services.prometheus import PrometheusServer
from tests.services.prometheus import write_config as prometheus_config

TIMEOUT_S = 60


def _binaries() -> tuple[str, str]:
    found = shutil.which("prometheus-alertmanager"), shutil.which("prometheus")
    if None in found:
        raise RuntimeError("needs prometheus and prometheus-alertmanager (scripts/install-services.sh)")
    return found  # type: ignore[return-value]


def _prometheus_starter(binary: str, work: Path, port: int) -> Any:
    def start(targets: list[str], rules: dict[str, Any], alertmanagers: list[str]) -> PrometheusServer:
        (work / "prometheus").mkdir()
        server = PrometheusServer(binary=binary, workdir=work / "prometheus", port=port)
        prometheus_config(server, targets, rules, alertmanagers)
        return server.start()
    return start


def _config(work: Path, urls: dict[str, str], prometheus_port: int) -> Path:
    """Each target's metrics from the chain's own Prometheus (the `prometheus` probe: error
    ratio, burn rate, onset, the baselines a day and a week back), plus its deploys."""
    repo = deploy_repo(work / "deploys", [4])
    (work / "token").write_text(TOKEN)
    prometheus = {"url": f"http://127.0.0.1:{prometheus_port}", "window": "3s", "lookback": "2m", "step_s": 1,
                  "queries": {"requests": "sum(rate(http_requests_total{$selector}[$window]))",
                              "errors": "sum(rate(http_requests_errors_total{$selector}[$window]))"}}
    targets = [{"name": t, "deployment": t, "probes": ["git-deploys", "prometheus"],
                "deploy_repo": {"path": str(repo)}, "prometheus": {**prometheus, "selector": f'target="{t}"'}}
               for t in urls]
    return write_config(work, targets, sweeps=False, intake={"token": {"file": str(work / "token")}})


@contextmanager
def _chain(n: int) -> Iterator[tuple[Chain, Path]]:
    alertmanager, prometheus = _binaries()
    served = serve()
    loopback: LoopbackServer = next(served)
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        work = Path(tmp)
        app = ErrorApp([f"svc-{i}" for i in range(n)])
        port = free_port()  # the daemon's config names Prometheus, which starts after it
        config = _config(work, app.mount(loopback), port)
        chain = start_chain(app, loopback, config, work / "token", alertmanager,
                            _prometheus_starter(prometheus, work, port))
        try:
            yield chain, config
        finally:
            chain.stop()
            served.close()


def _one(chain: Chain, watcher: ProposalWatcher, target: str) -> tuple[float, float]:
    """Fail `target`, wait for its proposal; (firing -> proposal, delivery -> proposal) seconds."""
    chain.app.fail(target)
    deadline = time.monotonic() + TIMEOUT_S
    while target not in watcher.seen:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no proposal for {target} within {TIMEOUT_S}s")
        time.sleep(0.02)
    seen_wall = time.time() - (time.perf_counter() - watcher.seen[target])
    chain.app.recover(target)
    firing = chain.firing_since(target)
    ledger = chain.daemon.ledger()
    delivered = next(e.at for e in ledger.events() if e.type == "alert_fired"
                     and e.data["alerts"][0]["labels"].get("hemostat_target") == target)
    ledger.close()
    if firing is None:
        raise RuntimeError(f"Prometheus shows no firing alert for {target}")
    return seen_wall - firing, seen_wall - delivered.timestamp()


def run(quick: bool) -> dict[str, Any]:
    n = 3 if quick else 10
    with _chain(n) as (chain, config):
        floor = _floor(config)
        watcher = ProposalWatcher(config.parent / "ledger.db").start()
        try:
            spans = [_one(chain, watcher, t) for t in chain.app.targets]
        finally:
            watcher.stop()
        failed = chain.manager.failed_notifications()
        sent = chain.manager.notifications()
    firing, delivery = [s[0] for s in spans], [s[1] for s in spans]
    return {
        "alerts": n, "notifications_sent": sent, "notifications_failed": failed,
        "firing_to_proposal_p50_ms": ms(percentile(firing, 50)), "firing_to_proposal_max_ms": ms(max(firing)),
        "delivery_to_proposal_p50_ms": ms(percentile(delivery, 50)),
        "delivery_to_proposal_p95_ms": ms(percentile(delivery, 95)), "probes": ["git-deploys", "prometheus"],
        "delivery_to_proposal_max_ms": ms(max(delivery)), "floor_ms": ms(floor),
        "ratio": round(percentile(delivery, 50) / floor, 3),
        "ratio_means": "p50 Alertmanager delivery-to-proposal / one diagnosis alone in-process (the floor)",
    }
