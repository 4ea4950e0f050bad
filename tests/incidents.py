"""Incidents built from raw API answers — `git log` output, kubelet log lines, Kubernetes JSON,
metrics-server usage, `pg_stat_activity` rows, Statuspage JSON, Prometheus text — passed through
each probe's own collect-side shaping, never hand-shaped observations.

The decision tests replay these, and `scripts/record_drills.py corpus` writes them to drills/.
Times are relative to T0, the moment the alert fired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.model import DependencySpec, HemostatError, Observation, TargetSpec
from probes import _kube, git_deploys, k8s_logs, k8s_workload, pg_activity, provider_status
from probes.app_metrics import sum_counters
from probes.http_health import check_result

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
JSON = dict[str, Any]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Incident:
    """A scenario: the target, what each probe saw, past executions and what must follow."""

    name: str
    target: JSON
    observations: list[Observation]
    expect: JSON
    started_at: datetime = T0
    history: list[JSON] = field(default_factory=list)

    @property
    def spec(self) -> TargetSpec:
        return TargetSpec.model_validate(self.target)

    def scenario(self) -> JSON:
        """The drill file's content."""
        doc: JSON = {"name": self.name, "target": self.target, "started_at": self.started_at.isoformat(),
                     "observations": [o.to_json() for o in self.observations]}
        if self.history:
            doc["history"] = [{**h, "at": h["at"].isoformat()} for h in self.history]
        return {**doc, "expect": {k: (v.isoformat() if isinstance(v, datetime) else v)
                                  for k, v in self.expect.items()}}


def observed(probe: str, target: str, data: JSON, when: datetime = T0) -> Observation:
    return Observation(probe, target, when, data, duration_s=0.2)


def failed(probe: str, target: str, error: HemostatError, when: datetime = T0) -> Observation:
    """A probe that could not look: the error its collect raised, as the runner records it."""
    return Observation(probe, target, when, {}, error=str(error), error_code=error.code, duration_s=0.1)


def crashed(probe: str, target: str, error: Exception, when: datetime = T0) -> Observation:
    """A probe (or plugin) that raised something unexpected: the runner's `probe_crashed`."""
    return Observation(probe, target, when, {}, error=f"{type(error).__name__}: {error}",
                       error_code="probe_crashed", duration_s=0.1)


class _ApiError(Exception):
    """What the official client raises for an HTTP error: only `.status` matters to the probes."""

    def __init__(self, status: int) -> None:
        super().__init__(f"({status})")
        self.status, self.body, self.reason = status, "", ""


def kube_error(status: int, verb: str, resource: str, namespace: str) -> HemostatError:
    """The probes' own mapping of an apiserver answer (403 forbidden, 404, 503)."""
    return _kube.to_error(_ApiError(status), verb, resource, namespace)


# -- git -------------------------------------------------------------------------------------------
def commit(when: datetime, subject: str, files: Sequence[str] = ("k8s/checkout.yaml",),
           author: str = "Dana Deployer") -> str:
    """One `git log --name-only` record, as git prints it."""
    sha = hashlib.sha1(f"{when}{subject}".encode()).hexdigest()
    head = "\x1f".join((sha, author, str(int(when.timestamp())), "0" * 40, subject))
    return "\x1e" + head + "\n\n" + "\n".join(files) + "\n"


def git(target: str, *records: str, when: datetime = T0) -> Observation:
    commits = git_deploys.parse_log("".join(records))
    return observed("git-deploys", target, {"repo": "/srv/deploys", "branch": "main",
                                            "since": (when - timedelta(hours=3)).isoformat(),
                                            "commits": commits}, when)


# -- kubelet logs ----------------------------------------------------------------------------------
def kubelet(lines: Sequence[tuple[datetime, str]]) -> str:
    """A container log as `kubectl logs --timestamps` returns it (RFC 3339, nanoseconds)."""
    return "".join(f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}123Z {text}\n" for t, text in lines)


def every(start: float, end: float, step: float, text: str) -> list[tuple[datetime, str]]:
    """`text` logged every `step` minutes from `start` to `end` (minutes from T0)."""
    n = int((end - start) / step) + 1
    return [(at(start + i * step), text.replace("{i}", str(1000 + i))) for i in range(n)]


def logs(spec: TargetSpec, pods: dict[str, str], when: datetime = T0) -> Observation:
    """k8s-logs from each pod's raw log (pod name -> text), through the probe's summarise."""
    reads = [(pod, "app", False) for pod in pods]
    return observed("k8s-logs", spec.name, k8s_logs.summarise(spec, len(pods), reads, list(pods.values())),
                    when)


# -- app metrics -----------------------------------------------------------------------------------
def prometheus(errors: float, requests: float) -> str:
    return ("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"
            f'http_requests_total{{code="200"}} {requests - errors}\nhttp_requests_total{{code="500"}} {errors}\n'
            "# HELP http_requests_errors_total Errors.\n# TYPE http_requests_errors_total counter\n"
            f"http_requests_errors_total {errors}\n")


def metrics(spec: TargetSpec, first: tuple[float, float], second: tuple[float, float],
            seconds: float = 2.0, when: datetime = T0) -> Observation:
    """Two scrapes of the app's /metrics, `seconds` apart: (errors, requests) counters each."""
    assert spec.metrics is not None
    scrapes = [{"at": (when + timedelta(seconds=s)).isoformat(),
                "errors": sum_counters(prometheus(*c), spec.metrics.error_counters),
                "requests": sum_counters(prometheus(*c), spec.metrics.request_counters)}
               for s, c in ((0, first), (seconds, second))]
    return observed("app-metrics", spec.name, {"url": str(spec.metrics.url), "scrapes": scrapes}, when)


# -- http health -----------------------------------------------------------------------------------
def health(spec: TargetSpec, answers: dict[str, tuple[int | None, str | None, str | None, float]],
           when: datetime = T0) -> Observation:
    """Dependency name -> (status, error, error kind, latency ms)."""
    deps: list[DependencySpec] = spec.dependencies
    checks = [check_result(d, answers[d.name][3], *answers[d.name][:3]) for d in deps if d.name in answers]
    return observed("http-health", spec.name, {"checks": checks, "breakers": {}}, when)


# -- statuspage ------------------------------------------------------------------------------------
def status_incident(name: str, started: datetime, impact: str = "major", status: str = "investigating",
                    components: Sequence[str] = ()) -> JSON:
    """One entry of /api/v2/incidents/unresolved.json, as Atlassian Statuspage serves it."""
    stamp = started.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"id": hashlib.sha1(name.encode()).hexdigest()[:12], "name": name, "status": status,
            "impact": impact, "created_at": stamp, "started_at": stamp, "shortlink": "https://stspg.io/x",
            "components": [{"name": c, "status": "major_outage"} for c in components],
            "incident_updates": [{"status": status, "body": f"We are {status} {name.lower()}."}]}


def statuspage(spec: TargetSpec, pages: dict[str, tuple[str, list[JSON]]], when: datetime = T0) -> Observation:
    """Dependency name -> (page indicator, unresolved incidents), through the probe's page_result."""
    out = []
    for dep in spec.dependencies:
        if dep.name not in pages or dep.statuspage_url is None:
            continue
        indicator, incidents = pages[dep.name]
        base = provider_status.api_base(str(dep.statuspage_url))
        status = {"page": {"id": "p", "name": dep.name.title(), "url": base},
                  "status": {"indicator": indicator, "description": "Partial System Outage"}}
        out.append({"name": dep.name, "url": base,
                    **provider_status.page_result(status, {"page": status["page"], "incidents": incidents}, base)})
    return observed("provider-status", spec.name, {"pages": out}, when)


# -- postgres --------------------------------------------------------------------------------------
def session(pid: int, state: str, query: str, *, user: str = "checkout", app: str = "checkout-api",
            db: str = "shop", age_s: float = 5.0, wait_s: float | None = None,
            blocked_by: Sequence[int] = (), when: datetime = T0) -> JSON:
    """One row of the probe's pg_stat_activity query; `age_s` is how long the transaction has run."""
    start = (when - timedelta(seconds=age_s)).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    return {"pid": pid, "db": db, "user": user, "app": app, "state": state, "superuser": False,
            "self": False, "hidden": False, "wait": "Lock" if blocked_by else None,
            "backend_start": start, "xact_start": start, "query_start": start,
            "xact_s": age_s, "query_s": age_s, "state_s": age_s, "wait_s": wait_s,
            "blocked_by": list(blocked_by), "query": query}


def postgres(spec: TargetSpec, rows: list[JSON], idle: int = 10, max_connections: int = 100,
             when: datetime = T0) -> Observation:
    """pg-activity from the rows (plus `idle` idle sessions), through the probe's own shaping."""
    assert spec.postgres is not None
    filler = [session(9000 + i, "idle", "SELECT 1", age_s=1, when=when) for i in range(idle)]
    settings = {"database": "shop", "role": "hemostat", "max_connections": max_connections, "reserved": 3,
                "server_version": "16.4", "sees_all": True}
    return observed("pg-activity", spec.name,
                    pg_activity.shape("db.shop.svc:5432", settings, rows + filler, spec.postgres,
                                      spec.thresholds), when)


# -- kubernetes ------------------------------------------------------------------------------------
LABELS = {"app": "checkout"}


def deployment(replicas: int, available: int, revision: int, image: str,
               conditions: Sequence[JSON] = ()) -> JSON:
    """`kubectl get deploy checkout -o json`."""
    container = {"name": "app", "image": image,
                 "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "d-1", "generation": revision,
                         "annotations": {k8s_workload.REVISION: str(revision)}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": LABELS},
                     "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}}},
            "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available,
                       "updatedReplicas": replicas, "observedGeneration": revision,
                       "conditions": list(conditions)}}


def condition(kind: str, status: str, reason: str, since: datetime, message: str = "") -> JSON:
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": stamp, "lastTransitionTime": stamp}


def replica_set(revision: int, image: str, created: datetime, replicas: int) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"checkout-{revision:x}7d9f", "namespace": "shop",
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "annotations": {k8s_workload.REVISION: str(revision)},
                         "ownerReferences": [{"kind": "Deployment", "name": "checkout", "uid": "d-1"}]},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}


def pod(name: str, image: str, created: datetime, *, restarts: int = 0, waiting: str | None = None,
        last: JSON | None = None, phase: str = "Running", memory_limit: str = "512Mi") -> JSON:
    state = {"waiting": {"reason": waiting, "message": f"{waiting}: back-off"}} if waiting else {
        "running": {"startedAt": created.strftime("%Y-%m-%dT%H:%M:%SZ")}}
    status = {"name": "app", "ready": not waiting, "restartCount": restarts, "image": image, "state": state}
    if last:
        status["lastState"] = {"terminated": last}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": LABELS,
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"containers": [{"name": "app", "image": image, "resources": {
                "limits": {"cpu": "500m", "memory": memory_limit}}}]},
            "status": {"phase": phase, "containerStatuses": [status]}}


def terminated(reason: str, exit_code: int, finished: datetime) -> JSON:
    return {"reason": reason, "exitCode": exit_code, "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ")}


def pod_metrics(name: str, cpu: str, memory: str) -> JSON:
    """One PodMetrics item of metrics.k8s.io/v1beta1, quantities exactly as metrics-server writes them."""
    return {"metadata": {"name": name, "namespace": "shop"}, "window": "30s",
            "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": memory}}]}


def hpa(current: int, maximum: int, desired: int) -> JSON:
    return {"metadata": {"name": "checkout"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "checkout"}, "minReplicas": 2, "maxReplicas": maximum},
        "status": {"currentReplicas": current, "desiredReplicas": desired}}


def workload(deploy: JSON, pods: list[JSON], replica_sets: list[JSON], hpas: Sequence[JSON] = (),
             usage: Sequence[JSON] | None = None, when: datetime = T0) -> Observation:
    """k8s-workload from the API's answers, through the probe's own shaping (and quantity parser)."""
    shaped = sorted((k8s_workload.replica_set(rs) for rs in replica_sets), key=lambda rs: -rs["revision"])
    notes = [] if usage is not None else ["metrics: metrics API (metrics.k8s.io) not available"]
    data = k8s_workload.shape(deploy, pods, shaped, k8s_workload.hpa_for(list(hpas), "checkout"),
                              k8s_workload.usage_by_pod(list(usage)) if usage is not None else None, notes)
    return observed("k8s-workload", "checkout", data, when)
