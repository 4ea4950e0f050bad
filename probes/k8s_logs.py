"""Probe `k8s-logs`: the playbook's `kubectl logs deployment/app --tail=100`, done right.

Reads the logs of every pod the Deployment's selector picks, every container (or the target's
`container`), and the previous container's log after a restart, bounded by the target's
`logs.tail_lines` and `logs.since_seconds`. Lines matching the configured patterns are grouped by
signature: the line with numbers, ids, uuids, hex, timestamps and IP addresses replaced by
placeholders, so a thousand "timeout after 3012 ms for order 81723" are one group with a count and
first/last seen. Enough matching lines make an `error_spike` finding with the top groups as
evidence. A container that is still starting, a pod whose log cannot be read, or a timeout is a
note in the observation; only when no log at all can be read does the probe report a gap.

Bounded whatever the pods log: each container's read stops at `LIMIT_BYTES` (asked of the
apiserver with `limitBytes`, and enforced here while reading in case it does not), all reads of
one pass share `TOTAL_BYTES`, and each log is grouped in a worker thread as soon as it arrives
and then dropped, so the event loop never groups and at most `CONCURRENT_READS` logs are held
at once. What was cut is said in `truncated` and the notes. Every call carries the probe
timeout, so a slow apiserver cannot hold the pass past it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.model import (
    Finding,
    HemostatError,
    Observation,
    Rate,
    Severity,
    TargetSpec,
    redact,
    shorten,
)
from agent.model.context import ProbeContext
from agent.model.rbac import KubeRule
from probes._kube import DEPLOYMENT_READS, Budget, list_pods, read_deployment, read_log, session
from probes.log_groups import group_errors, group_stream, merge_groups, signature
from probes.log_onset import onset_of

__all__ = ["K8sLogsProbe", "group_errors", "merge_groups", "signature"]

LIMIT_BYTES = 512 * 1024  # per container: ~2,000 long lines, enough to group the errors
TOTAL_BYTES = 16 * 1024 * 1024  # per pass: 50 pods x 2 containers stay within it at ~160 KiB each
CONCURRENT_READS = 8  # logs held (read or being grouped) at once: the real memory bound
_GROUPING = threading.Lock()
TOP_GROUPS = 20  # kept in the observation
EVIDENCE_GROUPS = 5  # quoted in the finding

def _safe(group: dict[str, Any]) -> dict[str, Any]:
    """A group as recorded: signature and example redacted and truncated, sources bounded."""
    return {**group, "signature": shorten(redact(group["signature"]), 300),
            "example": shorten(redact(group["example"]), 300),
            "sources": group["sources"][:5], "source_count": len(group["sources"])}


def _reads(pods: list[dict[str, Any]], container: str | None) -> list[tuple[str, str, bool]]:
    """(pod, container, previous) for every log to read: previous logs only after a restart."""
    reads = []
    for pod in pods:
        restarts = {s["name"]: int(s.get("restartCount", 0))
                    for s in (pod.get("status") or {}).get("containerStatuses") or []}
        for spec in pod["spec"].get("containers") or []:
            if container and spec["name"] != container:
                continue
            reads.append((pod["metadata"]["name"], spec["name"], False))
            if restarts.get(spec["name"], 0) > 0:
                reads.append((pod["metadata"]["name"], spec["name"], True))
    return reads


class K8sLogsProbe:
    name = "k8s-logs"
    summary = "error lines in the deployment's pod logs, grouped by signature (kubectl logs)"
    kube_rules = (*DEPLOYMENT_READS, KubeRule("", "pods/log", ("get",), why="kubectl logs"))

    def applies_to(self, target: TargetSpec) -> bool:
        return target.deployment is not None

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        async with session(ctx):
            deploy = await read_deployment(ctx, target)
            pods = await list_pods(ctx, deploy)
            reads = _reads(pods, target.container)
            gate, budget = asyncio.Semaphore(CONCURRENT_READS), Budget(TOTAL_BYTES)
            results = await asyncio.gather(*(self._read(ctx, target, read, gate, budget) for read in reads))
        return summarise(target, len(pods), reads, results)

    async def _read(self, ctx: ProbeContext, target: TargetSpec, read: tuple[str, str, bool],
                    gate: asyncio.Semaphore, budget: Budget) -> _Log | HemostatError | None:
        """One container's log, read within its share of the budget and grouped off the loop;
        None when the pass's budget was spent before its turn."""
        pod, container, previous = read
        async with gate:
            allowed = budget.take(LIMIT_BYTES)
            if allowed == 0:
                return None
            try:
                body, cut = await read_log(
                    ctx, ("get", "pods/log", target.namespace, pod), allowed, pod,
                    target.namespace, container=container, previous=previous, timestamps=True,
                    tail_lines=target.logs.tail_lines, since_seconds=target.logs.since_seconds,
                    limit_bytes=allowed)
            except HemostatError as e:
                budget.give_back(allowed)
                return e
            budget.give_back(allowed - len(body))
            return await asyncio.to_thread(_group_log, body, cut, allowed, tuple(target.logs.patterns))

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        data = observation.data
        matched, threshold = int(data.get("matched", 0)), target.thresholds.log_errors
        if matched < threshold:
            return []
        groups = data.get("groups", [])[:EVIDENCE_GROUPS]
        subject = target.deployment or target.name
        onset, onset_from = onset_of(groups, target.thresholds.log_errors_per_minute)
        if onset is None:  # no signature rose above its background (or no timeline): the first line
            onset, onset_from = _first_seen(groups), "first matching log line"
        rate = _rate(data, target, observation.collected_at, onset)
        spike = rate.verdict == "spike"
        top = groups[0]["signature"] if groups else "?"
        return [Finding(
            kind="error_spike", subject=subject, observed_at=now, probe=self.name,
            # Lines say something fails, not whom it hurts: without a share of requests, routes or
            # users a log burst is SEV-3 at most (a chatty broken widget is not an outage).
            severity=Severity.SEV3 if spike else Severity.SEV4,
            summary=f"{matched} error lines in {subject}'s logs ({rate.describe()}"
                    f"{'' if spike else ': too thin to call a spike'}); top: {shorten(top, 160)}",
            evidence=tuple(_evidence(g) for g in groups),
            facts={"matched": matched, "lines": data.get("lines", 0), "groups": len(data.get("groups", [])),
                   "top": groups, "pods": data.get("pods", 0)},
            onset=onset, onset_from=onset_from if onset else "", rate=rate,
        )]


def _stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _first_seen(groups: list[dict[str, Any]]) -> datetime | None:
    """When the evidence's error lines began: the earliest first-seen stamp of the top groups."""
    stamps = [s for g in groups if (s := _stamp(g.get("first_seen")))]
    return min(stamps) if stamps else None


def _rate(data: dict[str, Any], target: TargetSpec, at: datetime, onset: datetime | None) -> Rate:
    """Matching lines per minute, from the first one to the collection (at least a minute, at
    most the window). Logs carry no request count, so the rate is the only measure they give:
    below `log_errors_per_minute` it is too thin to call a spike (a dozen lines in 15 minutes is
    most apps' normal), however many lines the window holds."""
    window_s = float(data.get("since_seconds") or target.logs.since_seconds)
    span_s = max(60.0, min(window_s, (at - onset).total_seconds() if onset else window_s))
    matched = int(data.get("matched", 0))
    per_min = matched * 60 / span_s
    verdict: Any = "spike" if per_min >= target.thresholds.log_errors_per_minute else "small_sample"
    return Rate(per_min, "per_minute", span_s, samples=matched, verdict=verdict)


def _evidence(group: dict[str, Any]) -> str:
    first, last = (group.get("first_seen") or "")[11:19], (group.get("last_seen") or "")[11:19]
    seen = f" (first {first}, last {last})" if first else ""
    return f"{group['count']}x in {group.get('source_count', 1)} containers{seen}: " \
        f"{shorten(group['signature'], 200)}"


@dataclass(frozen=True)
class _Log:
    """What is kept of one container's log: its groups, not its text."""

    groups: list[dict[str, Any]]
    lines: int
    cut_at: int | None  # bytes read when the log went on past them


def _group_log(body: bytes, cut: bool, cap: int, patterns: tuple[str, ...]) -> _Log:
    """In a worker thread: the log's error groups; a cut log loses its partial last line."""
    if cut:
        body = body[:body.rfind(b"\n") + 1]
    lines = body.count(b"\n") + (not body.endswith(b"\n") and bool(body))
    with _GROUPING:  # a Hyperscan database has one scratch space: one scan at a time
        groups = group_stream([body], patterns, timestamped=True)
    return _Log(groups, lines, cap if cut else None)


def _note(read: tuple[str, str, bool], error: HemostatError) -> str:
    pod, container, previous = read
    return f"{pod}/{container}{' (previous)' if previous else ''}: {error}"


def _source(read: tuple[str, str, bool]) -> str:
    return f"{read[0]}/{read[1]}{'#previous' if read[2] else ''}"


def _truncated(reads: list[tuple[str, str, bool]], results: list[Any]) -> dict[str, Any] | None:
    """What the byte caps cut, for the observation; None when nothing was."""
    cut = [_source(read) for read, r in zip(reads, results, strict=True) if isinstance(r, _Log) and r.cut_at]
    skipped = sum(r is None for r in results)
    if not cut and not skipped:
        return None
    return {"logs_cut": len(cut), "cut": cut[:10], "logs_not_read": skipped,
            "per_log_bytes": LIMIT_BYTES, "total_bytes": TOTAL_BYTES}


def summarise(target: TargetSpec, pods: int, reads: list[tuple[str, str, bool]],
              raw: Sequence[str | _Log | HemostatError | None]) -> dict[str, Any]:
    """The observation from each read's result: its groups (or its raw text, grouped here), an
    error, or None when the pass's byte budget ran out before it."""
    patterns = tuple(target.logs.patterns)
    results = [_group_log(r.encode(), False, LIMIT_BYTES, patterns) if isinstance(r, str) else r for r in raw]
    logs = [(read, r) for read, r in zip(reads, results, strict=True) if isinstance(r, _Log)]
    failures = [(read, r) for read, r in zip(reads, results, strict=True) if isinstance(r, HemostatError)]
    hard = [e for read, e in failures if not read[2] and "waiting to start" not in str(e)]
    if hard and not logs:
        raise hard[0]  # not one log could be read: a gap in the diagnosis, named by its first cause
    groups = merge_groups([(_source(read), log.groups) for read, log in logs])
    notes = [_note(read, e) for read, e in failures if not (read[2] and "not found" in str(e))]
    if pods == 0:
        notes.insert(0, "no pods match the deployment's selector")
    truncated = _truncated(reads, results)
    if truncated:
        notes.insert(0, f"truncated: {truncated['logs_cut']} log(s) cut at {LIMIT_BYTES >> 10} KiB, "
                        f"{truncated['logs_not_read']} not read (pass budget {TOTAL_BYTES >> 20} MiB)")
    return {"deployment": target.deployment, "namespace": target.namespace, "pods": pods,
            "logs_read": len(logs), "lines": sum(log.lines for _, log in logs),
            "matched": sum(g["count"] for g in groups), "groups": [_safe(g) for g in groups[:TOP_GROUPS]],
            "tail_lines": target.logs.tail_lines, "since_seconds": target.logs.since_seconds,
            **({"truncated": truncated} if truncated else {}), "notes": notes[:20]}
