"""Drill corpus, part 1: each incident type of the playbook, and the red herrings around them
(a change after the symptom began, a docs-only change, a change during a dependency outage).
Built from raw API answers by tests/incidents.py; `scripts/record_drills.py corpus` writes them.
"""

from __future__ import annotations

from typing import Any

from tests.incidents import (
    Incident,
    at,
    commit,
    condition,
    deployment,
    every,
    git,
    health,
    hpa,
    kubelet,
    logs,
    metrics,
    pod,
    pod_metrics,
    postgres,
    replica_set,
    session,
    status_incident,
    statuspage,
    terminated,
    workload,
)

JSON = dict[str, Any]
STRIPE = {"name": "stripe", "url": "https://api.stripe.com/healthcheck",
          "statuspage_url": "https://status.stripe.com",
          "breaker": {"name": "stripe", "redis_url": {"env": "CHECKOUT_REDIS_URL"}},
          "fallback": {"backend": "configmap", "configmap": "checkout-config", "key": "PAYMENTS_PROVIDER",
                       "primary": "stripe", "secondary": "adyen"}}
PG = {"dsn": {"env": "CHECKOUT_DB_DSN"}}


def target(*probes: str, **extra: Any) -> JSON:
    return {"name": "checkout", "namespace": "shop", "deployment": "checkout", "probes": list(probes),
            "deploy_repo": {"path": "/srv/deploys"}, "metrics": {"url": "http://checkout.shop.svc:8080/metrics"},
            **extra}


def stripe_errors(start: float, end: float = -0.5) -> list[tuple[Any, str]]:
    return every(start, end, 0.25, "ERROR payment {i} failed: stripe.error.APIConnectionError: "
                                   "Could not connect to api.stripe.com (timeout after 30000 ms)")


def app_errors(start: float, end: float = -0.5) -> list[tuple[Any, str]]:
    return every(start, end, 0.2, "ERROR POST /api/v2/pay order {i} -> 500: KeyError: 'card_token' "
                                  "in checkout.payments.PaymentFlow.submit")


def bad_release() -> Incident:
    t = target("git-deploys", "app-metrics", "k8s-logs")
    inc = Incident("deploy: bad release, errors right after it", t, [], {
        "severity": "SEV-2", "branches": ["recent-deploy"], "actions": ["rollback"], "first": "rollback",
        "since": at(-4), "complete": True})
    spec = inc.spec
    inc.observations = [git("checkout", commit(at(-6), "checkout: v1.8.0 new payment flow", ["k8s/checkout.yaml"]),
                            commit(at(-120), "checkout: v1.7.1 receipts")),
                        metrics(spec, (100, 10_000), (180, 10_200)),
                        logs(spec, {"checkout-7d9f8-a": kubelet(app_errors(-4))})]
    return inc


def rollout_crash_loop() -> Incident:
    t = target("k8s-workload")
    deploy = deployment(4, 1, 7, "shop/checkout:v1.9.0", [
        condition("Available", "False", "MinimumReplicasUnavailable", at(-7))])
    pods = [pod(f"checkout-77c-{i}", "shop/checkout:v1.9.0", at(-8), restarts=5, waiting="CrashLoopBackOff",
                last=terminated("Error", 1, at(-1))) for i in range(3)]
    sets = [replica_set(7, "shop/checkout:v1.9.0", at(-8), 4), replica_set(6, "shop/checkout:v1.8.2", at(-300), 1)]
    return Incident("deploy: rollout crash-loops, roll back to the revision before it", t,
                    [workload(deploy, pods, sets)], {
                        "severity": "SEV-2", "actions": ["rollback"], "params": {"rollback": {"to_revision": 6}},
                        "complete": True})


def oom_after_release() -> Incident:
    t = target("k8s-workload")
    deploy = deployment(3, 2, 12, "shop/checkout:v2.0.0", [
        condition("Available", "False", "MinimumReplicasUnavailable", at(-3))])
    pods = [pod(f"checkout-9b-{i}", "shop/checkout:v2.0.0", at(-9), restarts=2,
                last=terminated("OOMKilled", 137, at(-2))) for i in range(3)]
    sets = [replica_set(12, "shop/checkout:v2.0.0", at(-9), 3), replica_set(11, "shop/checkout:v1.9.4", at(-900), 0)]
    return Incident("deploy: OOM kills after a release are the release, not the load", t,
                    [workload(deploy, pods, sets)], {
                        "severity": "SEV-2", "first": "rollback", "any_of": ["rollback"],
                        "params": {"rollback": {"to_revision": 11}}})


def lock_chain() -> Incident:
    t = target("pg-activity", postgres=PG, flags=[{"name": "new-payment-flow", "backend": "configmap",
                                                  "configmap": "flags", "key": "pay"}])
    rows = [session(4242, "idle in transaction", "UPDATE orders SET total = 11 WHERE id = 1",
                    app="checkout-worker", age_s=420),
            *(session(5000 + i, "active", "UPDATE orders SET total = total + 1 WHERE id = 1", age_s=300 - i,
                      wait_s=300 - i, blocked_by=[4242]) for i in range(6))]
    inc = Incident("database: a lock chain behind one idle transaction", t, [], {
        "severity": "SEV-2", "branches": ["database"], "actions": ["kill-queries"],
        "not_actions": ["feature-flag-off"], "params": {"kill-queries": {"reason": "lock_contention",
                                                                          "pids": [4242]}},
        "since": at(-7)})  # the root blocker's transaction began 7 min ago; the waits 5 min ago
    inc.observations = [postgres(inc.spec, rows)]
    return inc


def runaway_query() -> Incident:
    t = target("pg-activity", postgres=PG)
    rows = [session(7311, "active", "SELECT * FROM orders o JOIN order_items i ON true WHERE o.id > 10",
                    user="reports", app="metabase", age_s=1500),
            session(7312, "active", "SELECT 1", age_s=0.2)]
    inc = Incident("database: a runaway report query", t, [], {
        "severity": "SEV-3", "actions": ["kill-queries"],
        "params": {"kill-queries": {"reason": "long_running_queries", "pids": [7311]}}, "since": at(-25)})
    inc.observations = [postgres(inc.spec, rows)]
    return inc


def idle_in_transaction() -> Incident:
    t = target("pg-activity", postgres=PG)
    rows = [session(6100 + i, "idle in transaction", "SELECT * FROM carts WHERE id = 4 FOR UPDATE",
                    app="checkout-worker", age_s=900 + i) for i in range(3)]
    inc = Incident("database: sessions idle in transaction for 15 minutes", t, [], {
        "severity": "SEV-3", "actions": ["kill-queries"],
        "params": {"kill-queries": {"reason": "idle_in_transaction"}}})
    inc.observations = [postgres(inc.spec, rows)]
    return inc


def connections_saturated() -> Incident:
    t = target("pg-activity", postgres=PG)
    inc = Incident("database: connection slots exhausted", t, [], {
        "severity": "SEV-2", "branches": ["database"], "not_actions": ["feature-flag-off", "rollback"]})
    inc.observations = [postgres(inc.spec, [], idle=97, max_connections=100)]
    return inc


def third_party_outage() -> Incident:
    t = target("http-health", "provider-status", "k8s-logs", dependencies=[STRIPE])
    inc = Incident("dependency: stripe is down and says so", t, [], {
        "severity": "SEV-2", "branches": ["dependency"], "any_of": ["circuit-break", "failover"],
        "not_actions": ["rollback", "feature-flag-off"], "since": at(-20), "complete": True})
    spec = inc.spec
    inc.observations = [health(spec, {"stripe": (503, None, None, 41.0)}),
                        statuspage(spec, {"stripe": ("major", [status_incident("Elevated API errors", at(-20))])}),
                        logs(spec, {"checkout-7d9f8-a": kubelet(stripe_errors(-19))})]
    return inc


def dependency_slow() -> Incident:
    t = target("http-health", dependencies=[STRIPE])
    inc = Incident("dependency: stripe answers in 4.5 s", t, [], {
        "severity": "SEV-3", "branches": ["dependency"], "any_of": ["circuit-break", "failover"]})
    inc.observations = [health(inc.spec, {"stripe": (200, None, None, 4500.0)})]
    return inc


def traffic_spike() -> Incident:
    t = target("k8s-workload")
    names = [f"checkout-7d9f8-{i}" for i in range(4)]
    deploy = deployment(4, 4, 3, "shop/checkout:v1.8.0")
    pods = [pod(n, "shop/checkout:v1.8.0", at(-600)) for n in names]
    usage = [pod_metrics(n, "492m", "301Mi") for n in names]
    sets = [replica_set(3, "shop/checkout:v1.8.0", at(-600), 4)]
    return Incident("traffic: CPU at its limit and the HPA at its maximum", t,
                    [workload(deploy, pods, sets, [hpa(4, 4, 8)], usage)], {
                        "severity": "SEV-3", "branches": ["resource-exhaustion"], "actions": ["scale-up"],
                        "not_actions": ["rollback"]})


# -- red herrings ----------------------------------------------------------------------------------
def change_after_onset() -> Incident:
    t = target("git-deploys", "k8s-logs")
    inc = Incident("red herring: a deploy that landed after the errors began", t, [], {
        "severity": "SEV-3", "not_actions": ["rollback"], "actions": ["investigate"], "since": at(-12)})
    spec = inc.spec
    inc.observations = [git("checkout", commit(at(-3), "checkout: v1.8.1 bump timeouts")),
                        logs(spec, {"checkout-7d9f8-a": kubelet(app_errors(-12))})]
    return inc


def docs_only_change() -> Incident:
    t = target("git-deploys", "app-metrics")
    inc = Incident("red herring: a docs-only change just before the errors", t, [], {
        "severity": "SEV-2", "not_actions": ["rollback"], "actions": ["investigate"]})
    spec = inc.spec
    inc.observations = [git("checkout", commit(at(-5), "docs: runbook for payments", ["docs/runbook.md",
                                                                                      "README.md"])),
                        metrics(spec, (50, 20_000), (130, 20_400))]
    return inc


def change_during_outage() -> Incident:
    t = target("git-deploys", "http-health", "provider-status", "k8s-logs", dependencies=[STRIPE])
    inc = Incident("red herring: an unrelated config change during a stripe outage", t, [], {
        "severity": "SEV-2", "not_actions": ["rollback"], "any_of": ["circuit-break", "failover"],
        "since": at(-25)})
    spec = inc.spec
    inc.observations = [git("checkout", commit(at(-10), "checkout: raise log level", ["k8s/checkout-env.yaml"])),
                        health(spec, {"stripe": (None, "no answer within 5s", "timeout", 5000.0)}),
                        statuspage(spec, {"stripe": ("major", [status_incident("API unavailable", at(-25))])}),
                        logs(spec, {"checkout-7d9f8-a": kubelet(stripe_errors(-24))})]
    return inc


def change_before_errors_naming_dependency() -> Incident:
    t = target("git-deploys", "http-health", "provider-status", "k8s-logs", dependencies=[STRIPE])
    inc = Incident("ranking: a deploy before the errors, but the errors name stripe, down since earlier", t, [], {
        "severity": "SEV-2", "first": "circuit-break", "branches": ["recent-deploy", "dependency"]})
    spec = inc.spec
    inc.observations = [git("checkout", commit(at(-6), "checkout: v1.8.2", ["k8s/checkout.yaml"])),
                        health(spec, {"stripe": (502, None, None, 80.0)}),
                        statuspage(spec, {"stripe": ("major", [status_incident("Elevated errors", at(-30))])}),
                        logs(spec, {"checkout-7d9f8-a": kubelet(stripe_errors(-5))})]
    return inc


def rollout_after_onset() -> Incident:
    t = target("k8s-workload", "k8s-logs")
    deploy = deployment(4, 3, 9, "shop/checkout:v1.9.1", [
        condition("Available", "False", "MinimumReplicasUnavailable", at(-1))])
    pods = [pod("checkout-c1-0", "shop/checkout:v1.9.1", at(-1), waiting="ContainerCreating", phase="Pending")]
    sets = [replica_set(9, "shop/checkout:v1.9.1", at(-1), 4), replica_set(8, "shop/checkout:v1.9.0", at(-400), 3)]
    inc = Incident("red herring: a rollout started after the errors (someone's attempted fix)", t, [], {
        "not_actions": ["rollback"], "since": at(-13)})
    inc.observations = [workload(deploy, pods, sets),
                        logs(inc.spec, {"checkout-c0-1": kubelet(app_errors(-13, -2))})]
    return inc


PLAYBOOK = [bad_release, rollout_crash_loop, oom_after_release, lock_chain, runaway_query,
            idle_in_transaction, connections_saturated, third_party_outage, dependency_slow, traffic_spike]
RED_HERRINGS = [change_after_onset, docs_only_change, change_during_outage,
                change_before_errors_naming_dependency, rollout_after_onset]
