"""Drill corpus, part 2: false alarms at baseline, several causes at once, partial data (a probe
crashed, RBAC forbids a read, a timeout), metrics-server quantities in every unit, and feature
flags tied to evidence. Built from raw API answers by tests/incidents.py.
"""

from __future__ import annotations

from agent.model import TemporaryError
from tests.corpus_playbook import PG, PLAYBOOK, RED_HERRINGS, STRIPE, app_errors, stripe_errors, target
from tests.corpus_traps import TRAPS
from tests.incidents import (
    Incident,
    at,
    commit,
    crashed,
    deployment,
    every,
    failed,
    git,
    health,
    kube_error,
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
    workload,
)

PAY_FLAG = {"name": "new-payment-flow", "backend": "configmap", "configmap": "flags", "key": "pay",
            "governs": {"routes": ["/api/v2/pay"]}}
RECS_FLAG = {"name": "recommendations", "backend": "configmap", "configmap": "flags", "key": "recs",
             "governs": {"routes": ["/api/recs"], "components": ["recs-api"]}}
UNDECLARED_FLAG = {"name": "dark-mode", "backend": "configmap", "configmap": "flags", "key": "dark"}


# -- false alarms at baseline ----------------------------------------------------------------------
def log_noise() -> Incident:
    t = target("k8s-logs")
    inc = Incident("false alarm: a dozen cache-miss errors over 15 minutes is this app's normal", t, [], {
        "severity": "none", "actions": [], "complete": True})
    inc.observations = [logs(inc.spec, {"checkout-7d9f8-a": kubelet(every(-15, -0.5, 1.2, (
        "ERROR cache miss for session {i}: falling back to the database")))})]
    return inc


def small_sample() -> Incident:
    t = target("app-metrics")
    inc = Incident("false alarm: 1 error in 10 requests is a sample too small to page on", t, [], {
        "severity": "none", "actions": []})
    inc.observations = [metrics(inc.spec, (3, 400), (4, 410))]
    return inc


def ratio_at_baseline() -> Incident:
    t = target("app-metrics")
    inc = Incident("false alarm: 6% errors when this app always runs at 5.5%", t, [], {
        "severity": "none", "actions": []})
    inc.observations = [metrics(inc.spec, (5_500, 100_000), (5_530, 100_500), seconds=10)]
    return inc


def healthy() -> Incident:
    t = target("app-metrics", "k8s-logs", "git-deploys")
    inc = Incident("healthy: an old deploy, no errors", t, [], {"severity": "none", "actions": [], "complete": True})
    spec = inc.spec
    inc.observations = [metrics(spec, (10, 50_000), (10, 50_300)), logs(spec, {"checkout-7d9f8-a": ""}),
                        git("checkout", commit(at(-200), "checkout: v1.7.0"))]
    return inc


# -- several causes ----------------------------------------------------------------------------------
def lock_chain_and_bad_release() -> Incident:
    t = target("git-deploys", "app-metrics", "pg-activity", postgres=PG, flags=[PAY_FLAG])
    rows = [session(4242, "idle in transaction", "UPDATE stock SET n = n - 1 WHERE sku = 'x'", age_s=400),
            *(session(5100 + i, "active", "UPDATE stock SET n = n - 1 WHERE sku = 'x'", age_s=200, wait_s=200,
                      blocked_by=[4242]) for i in range(3))]
    inc = Incident("multi-cause: a lock chain and a bad release at once", t, [], {
        "branches": ["database", "recent-deploy"], "actions": ["kill-queries", "rollback"],
        "not_actions": ["feature-flag-off"], "params": {"kill-queries": {"pids": [4242]}}})
    spec = inc.spec
    inc.observations = [git("checkout", commit(at(-5), "checkout: v1.8.0", ["k8s/checkout.yaml"])),
                        metrics(spec, (100, 10_000), (200, 10_300)), postgres(spec, rows)]
    return inc


def three_independent_causes() -> Incident:
    payments = {"name": "payments", "url": "http://payments.shop.svc/health"}
    t = target("app-metrics", "pg-activity", "http-health", postgres=PG, dependencies=[payments])
    rows = [session(4300, "idle in transaction", "DELETE FROM sessions", age_s=500),
            *(session(5200 + i, "active", "SELECT * FROM sessions FOR UPDATE", age_s=120, wait_s=120,
                      blocked_by=[4300]) for i in range(2))]
    inc = Incident("multi-cause: three independent causes widen the blast radius one level", t, [], {
        "severity": "SEV-1", "branches": ["database", "dependency"]})
    spec = inc.spec
    inc.observations = [metrics(spec, (100, 10_000), (220, 10_400)), postgres(spec, rows),
                        health(spec, {"payments": (None, "connection refused or reset", "connect", 2.0)})]
    return inc


def one_cause_three_probes() -> Incident:
    inc = Incident("multi-probe: one stripe outage seen three ways stays one cause (no widening)",
                   target("http-health", "provider-status", "k8s-logs", "app-metrics", dependencies=[STRIPE]), [], {
                       "severity": "SEV-2", "branches": ["dependency"], "first": "circuit-break"})
    spec = inc.spec
    inc.observations = [health(spec, {"stripe": (503, None, None, 30.0)}),
                        statuspage(spec, {"stripe": ("major", [status_incident("Elevated errors", at(-15))])}),
                        logs(spec, {"checkout-7d9f8-a": kubelet(stripe_errors(-14))}),
                        metrics(spec, (400, 40_000), (520, 40_600))]
    return inc


# -- partial data ----------------------------------------------------------------------------------
def probe_crashed() -> Incident:
    inc = Incident("partial: k8s-workload crashed, the logs still show the errors", target("k8s-workload", "k8s-logs"),
                   [], {"severity": "SEV-3", "complete": False})
    inc.observations = [crashed("k8s-workload", "checkout", KeyError("availableReplicas")),
                        logs(inc.spec, {"checkout-7d9f8-a": kubelet(app_errors(-6))})]
    return inc


def rbac_forbids_logs() -> Incident:
    inc = Incident("partial: RBAC forbids reading pod logs; metrics still show the spike",
                   target("k8s-logs", "app-metrics", "git-deploys"), [], {
                       "severity": "SEV-2", "complete": False, "actions": ["rollback"]})
    spec = inc.spec
    inc.observations = [failed("k8s-logs", "checkout", kube_error(403, "get", "pods/log", "shop")),
                        metrics(spec, (100, 10_000), (190, 10_250)),
                        git("checkout", commit(at(-7), "checkout: v1.8.0", ["k8s/checkout.yaml"]))]
    return inc


def everything_failed() -> Incident:
    inc = Incident("partial: every probe failed, which is not 'no problem found'",
                   target("k8s-workload", "app-metrics"), [], {"severity": "none", "complete": False, "actions": []})
    inc.observations = [failed("k8s-workload", "checkout", kube_error(503, "get", "deployments", "shop")),
                        failed("app-metrics", "checkout", TemporaryError(
                            "metrics endpoint unreachable (ConnectError)", code="metrics_unreachable"))]
    return inc


def postgres_timeout_during_outage() -> Incident:
    inc = Incident("partial: pg-activity timed out during a stripe outage; the outage is still handled",
                   target("http-health", "provider-status", "pg-activity", postgres=PG, dependencies=[STRIPE]), [], {
                       "severity": "SEV-1", "complete": False, "any_of": ["circuit-break", "failover"]})
    spec = inc.spec
    inc.observations = [health(spec, {"stripe": (503, None, None, 20.0)}),
                        statuspage(spec, {"stripe": ("critical", [status_incident("Outage", at(-9), "critical")])}),
                        failed("pg-activity", "checkout", TemporaryError("timed out after 10s", code="timeout"))]
    return inc


# -- metrics-server quantities -----------------------------------------------------------------------
def _usage_incident(name: str, usage: list[tuple[str, str]], memory_limit: str, expect: dict[str, object]) -> Incident:
    names = [f"checkout-7d9f8-{i}" for i in range(len(usage))]
    deploy = deployment(len(names), len(names), 3, "shop/checkout:v1.8.0")
    pods = [pod(n, "shop/checkout:v1.8.0", at(-600), memory_limit=memory_limit) for n in names]
    items = [pod_metrics(n, cpu, mem) for n, (cpu, mem) in zip(names, usage, strict=True)]
    return Incident(name, target("k8s-workload"), [
        workload(deploy, pods, [replica_set(3, "shop/checkout:v1.8.0", at(-600), len(names))], usage=items)],
        {"complete": True, **expect})


def nano_kibi() -> Incident:
    return _usage_incident("quantities: metrics-server's nanocores and Ki (612344Ki) parse; memory near its limit",
                           [("1843209n", "612344Ki"), ("2503112n", "498000Ki")], "640Mi", {
                               "severity": "SEV-3", "branches": ["resource-exhaustion"], "actions": ["scale-up"]})


def milli_mebi() -> Incident:
    return _usage_incident("quantities: millicores and Mi, comfortably under the limits",
                           [("120m", "180Mi"), ("95m", "201Mi")], "512Mi", {"severity": "none", "actions": []})


def every_other_unit() -> Incident:
    return _usage_incident("quantities: u, plain cores, k, M, G, Gi, Ti-free exponents and plain bytes",
                           [("350000u", "0.25Gi"), ("0.2", "300M"), ("1e-1", "268435456"), ("0.3", "2e8"),
                            ("150m", "1G")], "2Gi", {"severity": "none", "actions": []})


# -- feature flags tied to evidence -------------------------------------------------------------------
def matches_route() -> Incident:
    t = target("k8s-logs", flags=[PAY_FLAG, RECS_FLAG, UNDECLARED_FLAG])
    inc = Incident("flags: only the flag governing the failing route is proposed off", t, [], {
        "actions": ["feature-flag-off", "investigate"], "first": "feature-flag-off"})
    inc.observations = [logs(inc.spec, {"checkout-7d9f8-a": kubelet(app_errors(-6))})]
    return inc


def does_not_match() -> Incident:
    t = target("k8s-logs", flags=[RECS_FLAG, UNDECLARED_FLAG])
    inc = Incident("flags: errors on a route no flag governs propose no flag off", t, [], {
        "actions": ["investigate"], "not_actions": ["feature-flag-off"]})
    inc.observations = [logs(inc.spec, {"checkout-7d9f8-a": kubelet(app_errors(-6))})]
    return inc


def component_down() -> Incident:
    recs = {"name": "recs-api", "url": "http://recs.shop.svc/health", "critical": False}
    t = target("http-health", "k8s-logs", dependencies=[recs], flags=[RECS_FLAG, PAY_FLAG])
    inc = Incident("flags: a failing component turns off only the flag that governs it", t, [], {
                       "branches": ["dependency"], "actions": ["feature-flag-off"]})
    inc.observations = [health(inc.spec, {"recs-api": (503, None, None, 12.0)})]
    return inc


FALSE_ALARMS = [log_noise, small_sample, ratio_at_baseline, healthy]
MULTI_CAUSE = [lock_chain_and_bad_release, three_independent_causes, one_cause_three_probes]
PARTIAL = [probe_crashed, rbac_forbids_logs, everything_failed, postgres_timeout_during_outage]
QUANTITIES = [nano_kibi, milli_mebi, every_other_unit]
FLAGS = [matches_route, does_not_match, component_down]
CLASSES = {"playbook": PLAYBOOK, "red-herring": RED_HERRINGS, "false-alarm": FALSE_ALARMS,
           "multi-cause": MULTI_CAUSE, "partial": PARTIAL, "quantities": QUANTITIES, "flags": FLAGS,
           "trap": TRAPS}
ALL = [build for builders in CLASSES.values() for build in builders]
