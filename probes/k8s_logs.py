"""Probe `k8s-logs`: the playbook's `kubectl logs deployment/app --tail=100`, done right.

Reads the logs of every pod the Deployment's selector picks, every container (or the target's
`container`), and the previous container's log after a restart, bounded by the target's
`logs.tail_lines` and `logs.since_seconds`. Lines matching the configured patterns are grouped by
signature: the line with numbers, ids, uuids, hex, timestamps and IP addresses replaced by
placeholders, so a thousand "timeout after 3012 ms for order 81723" are one group with a count and
first/last seen. Enough matching lines make an `error_spike` finding with the top groups as
evidence. A container that is still starting, a pod whose log cannot be read, or a timeout is a
note in the observation; only when no log at all can be read does the probe report a gap.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from probes._kube import DEPLOYMENT_READS, api, call, list_pods, read_deployment

LIMIT_BYTES = 4 * 1024 * 1024  # per container log read: a chatty pod must not eat the probe's memory
CONCURRENT_READS = 8
TOP_GROUPS = 20  # kept in the observation
EVIDENCE_GROUPS = 5  # quoted in the finding

_TOKENS = re.compile(r"""
    (?P<ts>\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?
        |\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?)
  | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<ip>\b(?:\d{1,3}\.){3}\d{1,3}\b
        |(?<![\w:])(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{1,4}(?![\w:]))
  | (?P<hex>\b0[xX][0-9a-fA-F]+\b|\b(?=[a-fA-F]*\d)(?=\d*[a-fA-F])[0-9a-fA-F]{6,}\b)
  | (?P<id>\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{8,}\b)
  | (?P<num>\d+(?:\.\d+)?)
""", re.VERBOSE)
_PLACEHOLDER = {"ts": "<ts>", "uuid": "<uuid>", "ip": "<ip>", "hex": "<hex>", "id": "<id>", "num": "<num>"}


def _placeholder(match: re.Match[str]) -> str:
    return _PLACEHOLDER[match.lastgroup or "num"]


def signature(line: str) -> str:
    """The line with its variable parts (timestamps, uuids, IPs, hex, ids, numbers) as placeholders.

    `signature("timeout after 3012 ms from 10.0.0.7")` is `"timeout after <num> ms from <ip>"`.
    The result holds no digit, and `signature(signature(x)) == signature(x)`.
    """
    return _TOKENS.sub(_placeholder, line.strip())


_LITERAL = re.compile(r"[\w :=,-]{3,}", re.ASCII)


def _literal(pattern: str) -> str | None:
    """The text a simple pattern (`\\bERROR\\b`, `^FATAL`, `Traceback`) cannot match without."""
    core = pattern.removeprefix("^").removesuffix("$").replace(r"\b", "")
    return core if _LITERAL.fullmatch(core) else None


_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    """`(?i)error` -> `(?i:error)`: global flags are only allowed at the start of the alternation."""
    flags = _GLOBAL_FLAGS.match(pattern)
    if flags is None:
        return f"(?:{pattern})"
    return f"(?{flags[1]}:{pattern[flags.end():]})"


@functools.lru_cache(maxsize=32)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a line matches any pattern. One compiled alternation; when every pattern is a
    plain word, a literal-only prefilter runs first (a `\\b` in front turns off the regex engine's
    fast literal scan, and most lines match nothing), so a typical line costs one fast search."""
    search = re.compile("|".join(_scoped(p) for p in patterns)).search
    literals = [_literal(p) for p in patterns]
    if not all(literals):
        return lambda line: search(line) is not None
    quick = re.compile("|".join(re.escape(lit) for lit in literals if lit)).search
    return lambda line: quick(line) is not None and search(line) is not None


def _matched(lines: Iterable[str], patterns: Sequence[str],
             timestamped: bool) -> Iterator[tuple[str | None, str]]:
    """(kubelet timestamp or None, text) of the matching lines; the stamp is not searched."""
    matches = _matcher(tuple(patterns))
    if not timestamped:
        yield from ((None, line) for line in lines if matches(line))
        return
    for line in lines:
        stamp, _, text = line.partition(" ")
        if matches(text):
            yield stamp, text


def group_errors(lines: Iterable[str], patterns: Sequence[str],
                 timestamped: bool = False) -> list[dict[str, Any]]:
    """Lines matching any pattern, grouped by `signature`, most frequent first.

    Each group: signature, count, first_seen, last_seen (the kubelet timestamps when
    `timestamped`, i.e. each line starts with an RFC 3339 stamp and a space; else None) and one
    example line. Built for large inputs: patterns compile once (see `_matcher`), and only
    matching lines are normalised.
    """
    groups: dict[str, list[Any]] = {}
    for stamp, text in _matched(lines, patterns, timestamped):
        key = signature(text)
        group = groups.get(key)
        if group is None:
            groups[key] = [1, stamp, stamp, text]
        else:
            group[0] += 1
            group[2] = stamp
    return [{"signature": key, "count": g[0], "first_seen": g[1], "last_seen": g[2], "example": g[3]}
            for key, g in sorted(groups.items(), key=lambda item: -item[1][0])]


def merge_groups(per_source: Sequence[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Groups from several containers as one list: counts summed, first/last seen widened."""
    merged: dict[str, dict[str, Any]] = {}
    for source, groups in per_source:
        for group in groups:
            into = merged.setdefault(group["signature"], {**group, "count": 0, "sources": []})
            into["count"] += group["count"]
            into["first_seen"] = min(filter(None, (into["first_seen"], group["first_seen"])), default=None)
            into["last_seen"] = max(filter(None, (into["last_seen"], group["last_seen"])), default=None)
            into["sources"].append(source)
    return sorted(merged.values(), key=lambda g: -g["count"])


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
        deploy = await read_deployment(ctx, target)
        pods = await list_pods(ctx, deploy)
        reads = _reads(pods, target.container)
        gate = asyncio.Semaphore(CONCURRENT_READS)
        results = await asyncio.gather(*(self._read(ctx, target, read, gate) for read in reads))
        return summarise(target, len(pods), reads, results)

    async def _read(self, ctx: ProbeContext, target: TargetSpec, read: tuple[str, str, bool],
                    gate: asyncio.Semaphore) -> str | HemostatError:
        pod, container, previous = read
        core = api(ctx, "CoreV1Api")
        async with gate:
            try:
                response = await call(
                    ctx, ("get", "pods/log", target.namespace, pod), core.read_namespaced_pod_log, pod,
                    target.namespace, container=container, previous=previous, timestamps=True,
                    tail_lines=target.logs.tail_lines, since_seconds=target.logs.since_seconds,
                    limit_bytes=LIMIT_BYTES, _preload_content=False)
            except HemostatError as e:
                return e
        return bytes(response.data or b"").decode(errors="replace")

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        data = observation.data
        matched, threshold = int(data.get("matched", 0)), target.thresholds.log_errors
        if matched < threshold:
            return []
        groups = data.get("groups", [])[:EVIDENCE_GROUPS]
        subject = target.deployment or target.name
        onset = _first_seen(groups)
        rate = _rate(data, target, observation.collected_at, onset)
        spike = rate.verdict == "spike"
        top = groups[0]["signature"] if groups else "?"
        return [Finding(
            kind="error_spike", subject=subject, observed_at=now, probe=self.name,
            severity=(Severity.SEV2 if matched >= 10 * threshold else Severity.SEV3) if spike
            else Severity.SEV4,
            summary=f"{matched} error lines in {subject}'s logs ({rate.describe()}"
                    f"{'' if spike else ': too thin to call a spike'}); top: {shorten(top, 160)}",
            evidence=tuple(_evidence(g) for g in groups),
            facts={"matched": matched, "lines": data.get("lines", 0), "groups": len(data.get("groups", [])),
                   "top": groups, "pods": data.get("pods", 0)},
            onset=onset, onset_from="first matching log line" if onset else "", rate=rate,
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


def _note(read: tuple[str, str, bool], error: HemostatError) -> str:
    pod, container, previous = read
    return f"{pod}/{container}{' (previous)' if previous else ''}: {error}"


def summarise(target: TargetSpec, pods: int, reads: list[tuple[str, str, bool]],
               results: list[str | HemostatError]) -> dict[str, Any]:
    """The observation: grouped errors, counts, and a note for every log that could not be read."""
    texts = [(read, r) for read, r in zip(reads, results, strict=True) if isinstance(r, str)]
    failures = [(read, r) for read, r in zip(reads, results, strict=True) if isinstance(r, HemostatError)]
    hard = [e for read, e in failures if not read[2] and "waiting to start" not in str(e)]
    if hard and not texts:
        raise hard[0]  # not one log could be read: a gap in the diagnosis, named by its first cause
    per_source = [(f"{read[0]}/{read[1]}{'#previous' if read[2] else ''}",
                   group_errors(text.splitlines(), target.logs.patterns, timestamped=True))
                  for read, text in texts]
    groups = merge_groups(per_source)
    notes = [_note(read, e) for read, e in failures if not (read[2] and "not found" in str(e))]
    if pods == 0:
        notes.insert(0, "no pods match the deployment's selector")
    return {"deployment": target.deployment, "namespace": target.namespace, "pods": pods,
            "logs_read": len(texts), "lines": sum(text.count("\n") for _, text in texts),
            "matched": sum(g["count"] for g in groups), "groups": [_safe(g) for g in groups[:TOP_GROUPS]],
            "tail_lines": target.logs.tail_lines, "since_seconds": target.logs.since_seconds,
            "notes": notes[:20]}
