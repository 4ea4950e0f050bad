"""Drill corpus, part 3: the traps real incidents set (issue 22), each one a scenario built from raw
API answers by tests/incidents.py that Hemostat used to get wrong with confidence.

Written to drills/trap-*.yaml by `scripts/record_drills.py corpus`.
"""

from __future__ import annotations

from agent.model.context import ProbeContext
from agent.model.prometheus import PrometheusSpec
from probes import app_metrics, prometheus, prometheus_api, prometheus_queries
from tests.corpus_playbook import app_errors, target
from tests.incidents import (
    T0,
    Incident,
    at,
    commit,
    every,
    git,
    health,
    kubelet,
    logs,
    metrics,
    observed,
    status_incident,
    statuspage,
)


def _sha(record: str) -> str:
    return record.split("\x1f", 1)[0].lstrip("\x1e")


def fresh_deploy_failing_from_start() -> Incident:
    """A deploy 3 minutes old whose pods fail 40% of requests from their first one: the
    counters' lifetime ratio is the failure itself, so it is no baseline."""
    t = target("git-deploys", "app-metrics")
    release = commit(at(-3), "checkout: v2.0.0 new cart", ["k8s/checkout.yaml"])
    inc = Incident("trap: a 3-minute-old deploy failing 40% from its start is not 'at its baseline'", t, [], {
        "severity": "SEV-2", "branches": ["recent-deploy"], "actions": ["rollback"],
        "params": {"rollback": {"commits": [_sha(release)]}}})
    inc.observations = [git("checkout", release, commit(at(-300), "checkout: v1.9.4")),
                        metrics(inc.spec, (7_200, 18_000), (7_240, 18_100), seconds=1)]
    return inc


def branch_moved_on() -> Incident:
    """The bad deploy, then a README commit on the deploy branch: the revert must name the
    deploy the evidence points at, not the branch's head."""
    t = target("git-deploys", "app-metrics", "k8s-logs")
    release = commit(at(-6), "checkout: v1.8.0 new payment flow", ["k8s/checkout.yaml"])
    readme = commit(at(-1), "docs: how to deploy", ["README.md"])
    inc = Incident("trap: the deploy branch moved on after the bad deploy (a README commit)", t, [], {
        "branches": ["recent-deploy"], "first": "rollback",
        "params": {"rollback": {"commits": [_sha(release)]}}})
    inc.observations = [git("checkout", readme, release, commit(at(-120), "checkout: v1.7.1 receipts")),
                        metrics(inc.spec, (100, 10_000), (180, 10_200)),
                        logs(inc.spec, {"checkout-7d9f8-a": kubelet(app_errors(-4))})]
    return inc


def error_alert(started: float) -> dict[str, object]:
    """An Alertmanager alert as the webhook carries it (a Prometheus rule over 5 minutes)."""
    return {"status": "firing", "labels": {"alertname": "CheckoutHighErrorRate", "severity": "page"},
            "annotations": {"summary": "checkout 5xx above 5% for 2m", "value": "0.41"},
            "startsAt": at(started).isoformat(), "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=sum(rate(http_requests_errors_total[5m]))"}


def low_traffic_with_an_error_alert() -> Incident:
    """10 requests a second: even an 8 s window holds 80 requests, under the 100 a ratio needs.
    The alert Prometheus fired over its own 5-minute window is the evidence that is missing."""
    t = target("git-deploys", "app-metrics")
    release = commit(at(-5), "checkout: v2.1.0", ["k8s/checkout.yaml"])
    inc = Incident("trap: 10 requests/s with a firing error alert is not 'too few requests to judge'", t, [], {
        "severity": "SEV-2", "branches": ["recent-deploy"], "actions": ["rollback"]})
    observed = metrics(inc.spec, (1_200, 3_000), (1_232, 3_080), seconds=8)
    shaped = app_metrics.error_alerts(ProbeContext(alerts=(error_alert(-3),)))  # the probe's own shaping
    observed.data.update(shaped)
    inc.observations = [git("checkout", release, commit(at(-300), "checkout: v2.0.9")), observed]
    return inc


def onset_under_background_noise() -> Incident:
    """The app's usual trickle ("Broken pipe" once a minute since 02:32) under the failure's own
    signature from 02:41; the deploy landed at 02:40. The errors began at 02:41, not 02:32."""
    t = target("git-deploys", "k8s-logs")
    release = commit(at(-20), "checkout: v1.8.0 new payment flow", ["k8s/checkout.yaml"])
    inc = Incident("trap: onset is when the failure's signature rose, not the background's first line", t, [], {
        "branches": ["recent-deploy"], "actions": ["rollback"], "since": at(-19)})
    trickle = every(-28, -0.5, 1.0, "ERROR upstream write failed: Broken pipe (client {i} went away)")
    failure = app_errors(-19)
    lines = sorted([*trickle, *failure])
    inc.observations = [git("checkout", release, commit(at(-300), "checkout: v1.7.1")),
                        logs(inc.spec, {"checkout-7d9f8-a": kubelet(lines)})]
    return inc


def rollback_of_a_revert() -> Incident:
    """v2.0.0 went out, was reverted 12 minutes later, and errors began after the revert (the
    revert broke something of its own). Rolling back the revert re-deploys v2.0.0; rolling back
    v2.0.0 is what the revert already did."""
    t = target("git-deploys", "app-metrics", "k8s-logs")
    bad = commit(at(-20), "checkout: v2.0.0", ["k8s/checkout.yaml"])
    revert = commit(at(-8), 'Revert "checkout: v2.0.0"', ["k8s/checkout.yaml"])
    inc = Incident("trap: a rollout that was itself a revert is never rolled back", t, [], {
        "not_actions": ["rollback"], "actions": ["investigate"]})
    inc.observations = [git("checkout", revert, bad, commit(at(-300), "checkout: v1.9.9")),
                        metrics(inc.spec, (100, 10_000), (180, 10_200)),
                        logs(inc.spec, {"checkout-7d9f8-a": kubelet(app_errors(-6))})]
    return inc


def configmap_only_change() -> Incident:
    """A ConfigMap-only change before the errors: an image rollback would leave it as it is."""
    t = target("git-deploys", "app-metrics", "k8s-logs")
    change = commit(at(-6), "checkout: raise payment timeout", ["k8s/checkout-configmap.yaml"])
    inc = Incident("trap: a ConfigMap-only change is not undone by an image rollback", t, [], {
        "not_actions": ["rollback"], "actions": ["investigate"]})
    inc.observations = [git("checkout", change, commit(at(-300), "checkout: v1.9.9")),
                        metrics(inc.spec, (100, 10_000), (180, 10_200)),
                        logs(inc.spec, {"checkout-7d9f8-a": kubelet(app_errors(-4))})]
    return inc


def selector_matches_nothing() -> Incident:
    """Prometheus answers every query with `{"resultType": "matrix", "result": []}`: the selector
    names no series (a renamed job). That is missing data, not a healthy app."""
    t = target("prometheus", prometheus={"url": "http://prometheus.monitoring:9090", "selector": 'job="checkout-v2"'})
    inc = Incident("trap: a Prometheus selector that matches no series is a gap, not 'no problem found'", t, [], {
        "severity": "none", "actions": [], "complete": False})
    spec = inc.spec.prometheus
    assert isinstance(spec, PrometheusSpec)
    empty = {"resultType": "matrix", "result": []}
    answers = {key: prometheus_api._worst_points(empty) if ask.range
               else prometheus_api._worst_value({"resultType": "vector", "result": []})
               for key, ask in prometheus_queries.plan(inc.spec, spec).items()}
    data = prometheus._observation(spec, T0.timestamp(), answers, None)  # the probe's own shaping
    inc.observations = [observed("prometheus", "checkout", data)]
    return inc


def burn_without_history() -> Incident:
    """A new app: Prometheus has 3 minutes of its error ratio, 8% failing. `rate(...[1h])` over
    3 minutes of samples is not a 1-hour burn: the SLO windows are a gap, not a SEV-1."""
    t = target("prometheus", prometheus={"url": "http://prometheus.monitoring:9090"})
    inc = Incident("trap: an SLO burn 'over 1h' from 3 minutes of history is a gap, not SEV-1", t, [], {
        "severity": "SEV-2", "complete": False})
    spec = inc.spec.prometheus
    assert isinstance(spec, PrometheusSpec)
    now = T0.timestamp()
    recent = {"resultType": "matrix", "result": [{"metric": {"job": "checkout"}, "values": [
        [now - 180 + 15 * i, "0.08"] for i in range(13)]}]}
    instant = {"resultType": "vector", "result": [{"metric": {}, "value": [now, "0.08"]}]}
    answers: dict[str, object] = {}
    for key, ask in prometheus_queries.plan(inc.spec, spec).items():
        if ask.range:
            answers[key] = prometheus_api._worst_points(recent if key == "error_ratio" else
                                                        {"resultType": "matrix", "result": []})
        elif key == "requests":
            answers[key] = 20.0
        elif key.startswith("error_ratio["):
            answers[key] = prometheus_api._worst_value(instant)
        else:
            answers[key] = None  # a day and a week ago: no data yet
    data = prometheus._observation(spec, now, answers, None)
    inc.observations = [observed("prometheus", "checkout", data)]
    return inc


RECS_FLAG = {"name": "recommendations", "backend": "configmap", "configmap": "flags", "key": "recs",
             "governs": {"routes": ["/api/recs"], "components": ["recs-api"]}}


def chatty_widget() -> Incident:
    """A broken recommendations widget behind a flag logs 20 lines a minute; checkout's requests
    are fine. Volume of lines is not user impact: SEV-3, and the flag goes off."""
    t = target("k8s-logs", "app-metrics", flags=[RECS_FLAG])
    inc = Incident("trap: a broken widget that logs a lot is not SEV-2", t, [], {
        "severity": "SEV-3", "first": "feature-flag-off"})
    lines = every(-10, -0.05, 0.05, "ERROR GET /api/recs widget {i} -> 500: recommendations timed out")
    inc.observations = [logs(inc.spec, {"checkout-7d9f8-a": kubelet(lines)}),
                        metrics(inc.spec, (100, 1_000_000), (101, 1_000_400), seconds=2)]
    return inc


AUTH = {"name": "auth-svc", "url": "http://auth-svc.identity.svc:8080/healthz",
        "statuspage_url": "https://status.auth.example.com",
        "breaker": {"name": "auth", "redis_url": {"env": "ORDERS_REDIS_URL"}}}


def shared_dependency_outage() -> Incident:
    """auth-svc is down (its health check 503, its status page declared the outage) and every
    error this service logs names it; this service also deployed 6 minutes ago. One cause:
    the deploy is not offered as an alternative."""
    t = {**target("git-deploys", "http-health", "provider-status", "k8s-logs", dependencies=[AUTH]),
         "name": "orders", "deployment": "orders"}
    inc = Incident("trap: in a shared-dependency outage, this service's own deploy is not an alternative", t, [], {
        "first": "circuit-break", "not_actions": ["rollback"]})
    spec = inc.spec
    errors = every(-5, -0.5, 0.2, "ERROR GET /api/orders/{i} -> 502: upstream auth-svc answered 503 (token check)")
    inc.observations = [git("orders", commit(at(-6), "orders: v3.2.0", ["k8s/orders.yaml"])),
                        health(spec, {"auth-svc": (503, None, None, 40.0)}),
                        statuspage(spec, {"auth-svc": ("major", [status_incident("Login failures", at(-12))])}),
                        logs(spec, {"orders-5c7d9-a": kubelet(errors)})]
    return inc


def change_before_mixed_errors() -> Incident:
    """Not a trap (no drill): a deploy before the errors; most errors name stripe (down), some are
    the app's own. The deploy stays a candidate, offered as an alternative."""
    from tests.corpus_playbook import change_before_errors_naming_dependency, stripe_errors

    incident = change_before_errors_naming_dependency()
    incident.observations[-1] = logs(incident.spec, {"checkout-7d9f8-a": kubelet(sorted(
        [*stripe_errors(-5), *app_errors(-5)]))})
    return incident


TRAPS = [fresh_deploy_failing_from_start, branch_moved_on, low_traffic_with_an_error_alert,
         onset_under_background_noise, rollback_of_a_revert, configmap_only_change, selector_matches_nothing,
         burn_without_history, chatty_widget, shared_dependency_outage]
