"""What the `k8s-workload` probe's observation says (pure): `replicas_unavailable`,
`rollout_stuck`, `crash_loop`, `oom_killed`, `pods_pending`, `recent_deploy` (a rollout is a
deploy), `cpu_saturated`, `memory_saturated` and `hpa_at_max`, each with its onset where the
evidence carries one (the Available condition's transition, the failing revision's ReplicaSet,
the crashing pods' start, the OOM kill, the rollout).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from agent.model import Finding, Severity, TargetSpec, truncate

JSON = dict[str, Any]


def findings(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    rules = (_replicas, _rollout, _crash_loop, _oom, _pending, _recent_deploy, _saturation, _hpa_at_max)
    return [f for rule in rules for f in rule(data, target, now)]


def _finding(kind: str, target: TargetSpec, now: datetime, severity: Severity, summary: str,
             evidence: list[str], onset: tuple[datetime | None, str] = (None, ""), **facts: Any) -> Finding:
    return Finding(kind=kind, subject=target.deployment or target.name, severity=severity,
                   observed_at=now, summary=summary, probe="k8s-workload",
                   evidence=tuple(truncate(e, 240) for e in evidence[:5]), facts=facts,
                   onset=onset[0], onset_from=onset[1] if onset[0] else "")


def _earliest(stamps: list[str | None], why: str) -> tuple[datetime | None, str]:
    """The earliest of the evidence's timestamps, and what they are."""
    times = [_time(s) for s in stamps if s]
    return (min(times) if times else None), why


def _condition_since(d: JSON, kind: str) -> tuple[datetime | None, str]:
    cond = next((c for c in d["conditions"] if c["type"] == kind and c["status"] == "False"), None)
    at = cond and (cond.get("lastTransitionTime") or cond.get("lastUpdateTime"))
    return (_time(at) if at else None), f"the {kind} condition turning False"


def _containers(data: JSON) -> list[tuple[str, JSON]]:
    return [(pod["name"], c) for pod in data.get("pods", []) for c in pod["containers"]]


def _replicas(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    d = data["deployment"]
    if d["replicas"] == 0 or d["available"] >= d["replicas"]:
        return []
    severity = Severity.SEV1 if d["available"] == 0 else Severity.SEV2
    return [_finding("replicas_unavailable", target, now, severity,
                     f"{d['available']}/{d['replicas']} replicas of {d['name']} available",
                     [f"{c['type']}={c['status']} {c.get('reason') or ''}: {c.get('message') or ''}"
                      for c in d["conditions"]], onset=_condition_since(d, "Available"),
                     desired=d["replicas"], available=d["available"], ready=d["ready"], updated=d["updated"])]


def _rollout(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    d = data["deployment"]
    progressing = next((c for c in d["conditions"] if c["type"] == "Progressing"), None)
    if progressing is None or (progressing["status"] != "False"
                               and progressing.get("reason") != "ProgressDeadlineExceeded"):
        return []
    reason = progressing.get("reason")
    return [_finding("rollout_stuck", target, now, Severity.SEV2,
                     f"rollout of {d['name']} revision {d['revision']} is stuck: {reason}",
                     [progressing.get("message") or ""], revision=d["revision"], reason=reason,
                     onset=_earliest([rs["created"] for rs in data.get("replicasets") or []
                                      if str(rs["revision"]) == str(d["revision"])],
                                     f"rollout of revision {d['revision']}"))]


def _crash_loop(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    looping = [(p, c) for p, c in _containers(data) if c["waiting"] == "CrashLoopBackOff"]
    restarting = [(p, c) for p, c in _containers(data) if c["restarts"] >= target.thresholds.restarts]
    hits = looping or restarting
    if not hits:
        return []
    last = [f"{p}/{c['name']}: {c['restarts']} restarts, {c['waiting'] or 'running'}"
            + (f", last exit {c['last_terminated']['exit_code']} ({c['last_terminated']['reason']})"
               if c["last_terminated"] else "") for p, c in hits]
    worst = max(c["restarts"] for _, c in hits)
    what = "in CrashLoopBackOff" if looping else f"restarted >= {target.thresholds.restarts} times"
    name = data["deployment"]["name"]
    return [_finding("crash_loop", target, now, Severity.SEV2 if looping else Severity.SEV3,
                     f"{len(hits)} container(s) of {name} {what} (max {worst} restarts)",
                     last, containers=len(hits), max_restarts=worst, crash_loop_backoff=bool(looping),
                     onset=_earliest([_pod_created(data, p) for p, _ in hits], "the crashing pods' start"))]


def _recent_termination(c: JSON, now: datetime, window: timedelta) -> bool:
    at = (c["last_terminated"] or {}).get("finished_at")
    return at is None or now - _time(at) <= window


def _oom(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    window = timedelta(minutes=target.thresholds.recent_deploy_minutes)
    hits = [(p, c) for p, c in _containers(data)
            if c["terminated"] == "OOMKilled" or ((c["last_terminated"] or {}).get("reason") == "OOMKilled"
                                                   and _recent_termination(c, now, window))]
    if not hits:
        return []
    limits = {c["name"]: c["limits"].get("memory") for _, c in hits}
    return [_finding("oom_killed", target, now, Severity.SEV2,
                     f"{len(hits)} container(s) of {data['deployment']['name']} OOMKilled",
                     [f"{p}/{c['name']} OOMKilled, memory limit {_mib(c['limits'].get('memory'))}"
                      for p, c in hits], containers=len(hits), memory_limits=limits,
                     onset=_earliest([(c["last_terminated"] or {}).get("finished_at") for _, c in hits],
                                     "the OOM kill"))]


PENDING_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                             "InvalidImageName"})


def _why_pending(pod: JSON) -> str | None:
    if pod["phase"] != "Pending":
        return None
    waiting = (f"{c['waiting']}: {c['waiting_message']}" for c in pod["containers"]
               if c["waiting"] in PENDING_REASONS)
    return pod["unschedulable"] or next(waiting, None)


def _pending(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    stuck = [(pod["name"], why) for pod in data.get("pods", []) if (why := _why_pending(pod))]
    if not stuck:
        return []
    every = len(stuck) == len(data["pods"])
    return [_finding("pods_pending", target, now, Severity.SEV2 if every else Severity.SEV3,
                     f"{len(stuck)} pod(s) of {data['deployment']['name']} pending: {stuck[0][1]}",
                     [f"{name}: {why}" for name, why in stuck], pods=len(stuck),
                     onset=_earliest([_pod_created(data, name) for name, _ in stuck],
                                     "the pending pods' creation"))]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _pod_created(data: JSON, name: str) -> str | None:
    return next((p.get("created") for p in data.get("pods", []) if p["name"] == name), None)


def _recent_deploy(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    history = data.get("replicasets") or []
    if not history or not history[0].get("created"):
        return []
    newest, at = history[0], _time(history[0]["created"])
    minutes = (now - at) / timedelta(minutes=1)
    if not 0 <= minutes <= target.thresholds.recent_deploy_minutes:
        return []
    previous = history[1] if len(history) > 1 else None
    image = next(iter(newest["images"].values()), None)
    return [_finding(
        "recent_deploy", target, now, Severity.SEV4,
        f"rollout of {data['deployment']['name']} revision {newest['revision']} ({image}) landed {at:%H:%M}, "
        f"{minutes:.0f} min before the incident",
        [f"revision {rs['revision']} {rs['created']}: {_images(rs)}" for rs in history[:3]],
        onset=(at, f"rollout of revision {newest['revision']}"),
        image_changed=previous is not None and previous["images"] != newest["images"],
        revision=newest["revision"], image=image, images=newest["images"], at=at.isoformat(),
        minutes_before=round(minutes, 1), replicaset=newest["name"],
        previous_revision=previous["revision"] if previous else None,
        previous_image=next(iter(previous["images"].values()), None) if previous else None)]


def _images(rs: JSON) -> str:
    return ", ".join(f"{name}={image}" for name, image in rs["images"].items())


def _mib(value: float | None) -> str:
    return "none" if value is None else f"{value / 2**20:.0f}Mi"


def _usage_ratios(data: JSON, resource: str) -> list[tuple[float, str, str]]:
    """(usage / limit, pod, container), highest first, for containers with a limit and a sample."""
    metrics = data.get("metrics") or {}
    ratios = [(metrics[p][c["name"]][resource] / c["limits"][resource], p, c["name"])
              for p, c in _containers(data)
              if c["limits"].get(resource) and resource in metrics.get(p, {}).get(c["name"], {})]
    return sorted(ratios, reverse=True)


def _saturation(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    findings = []
    limits = target.thresholds
    for resource, kind, threshold in (("cpu", "cpu_saturated", limits.cpu_saturated_ratio),
                                      ("memory", "memory_saturated", limits.memory_saturated_ratio)):
        hot = [r for r in _usage_ratios(data, resource) if r[0] >= threshold]
        if hot:
            findings.append(_finding(
                kind, target, now, Severity.SEV3,
                f"{len(hot)} container(s) of {data['deployment']['name']} at >= {threshold:.0%} of their "
                f"{resource} limit (max {hot[0][0]:.0%})",
                [f"{p}/{c}: {ratio:.0%} of the {resource} limit" for ratio, p, c in hot],
                containers=len(hot), max_ratio=round(hot[0][0], 3), threshold=threshold,
                replicas=data["deployment"]["replicas"]))
    return findings


def _hpa_at_max(data: JSON, target: TargetSpec, now: datetime) -> list[Finding]:
    hpa = data.get("hpa")
    if not hpa or hpa["current"] < hpa["max"]:
        return []
    return [_finding("hpa_at_max", target, now, Severity.SEV3,
                     f"hpa {hpa['name']} is at its maximum: {hpa['current']}/{hpa['max']} replicas "
                     f"(wants {hpa['desired']})", [f"min {hpa['min']}, max {hpa['max']}"],
                     hpa=hpa["name"], current=hpa["current"], max=hpa["max"], desired=hpa["desired"])]
