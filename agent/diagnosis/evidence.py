"""What the findings say about a candidate cause, in words an engineer can check. Pure.

`agent.diagnosis.decide` asks: when did the symptom begin, which changes came before it, does the
evidence a tree branch weighs hold for this cause, and which feature flags is the failing
evidence about. Every answer carries the sentence that goes into a proposal's rationale, for
or against.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from agent.model import Finding, FlagSpec, TargetSpec, shorten
from agent.model.rate import LIFETIME

# Kinds that describe context, not damage: they never raise severity on their own.
CONTEXT_KINDS = frozenset({"recent_deploy", "probe_failed", "gitops_managed"})
CHANGE_KINDS = frozenset({"recent_deploy"})
_GENERIC_LABELS = frozenset({"www", "api", "com", "net", "org", "io", "status", "health", "svc",
                             "cluster", "local", "default", "internal", "example"})


def hhmm(at: datetime) -> str:
    return f"{at:%H:%M}"


def dated_by_history(findings: Sequence[Finding], past: Sequence[Finding]) -> list[Finding]:
    """Findings whose evidence carries no start of their own (a failing health check) take the
    first time the same trouble was seen on the same subject in the incident's earlier sweeps."""
    first: dict[tuple[str, str], datetime] = {}
    for f in past:
        if f.kind != "probe_failed" and not f.noise:
            key = (f.kind, f.subject)
            first[key] = min(first.get(key, f.began), f.began)
    seen = "first seen in the incident's earlier sweeps"
    return [replace(f, onset=first[(f.kind, f.subject)], onset_from=seen)
            if f.onset is None and first.get((f.kind, f.subject), f.observed_at) < f.observed_at else f
            for f in findings]


def with_history_baselines(findings: Sequence[Finding]) -> list[Finding]:
    """Where a probe with real history (Prometheus: the same hour a day and a week back) judged a
    rate no worse than usual, the same trouble on the same subject from a probe without that
    history (two scrapes, a log window) is the usual too: the longer memory wins."""
    usual = {(f.kind, f.subject) for f in findings
             if f.rate is not None and f.rate.verdict == "at_baseline" and f.rate.baseline_from
             and f.rate.baseline_from != LIFETIME}
    return [replace(f, rate=replace(f.rate, verdict="at_baseline"))
            if f.rate is not None and (f.kind, f.subject) in usual and f.rate.verdict == "spike" else f
            for f in findings]


def explained(finding: Finding, findings: Sequence[Finding]) -> bool:
    """A symptom (replicas unavailable, pods pending) of a workload whose root cause another
    finding names (probes/k8s_faults/): no action on its strength alone."""
    return any(finding.kind in (f.facts.get("explains") or ())
               and f.facts.get("deployment") == finding.subject for f in findings if f is not finding)


def problems(findings: Sequence[Finding]) -> list[Finding]:
    """The findings that describe damage: not context, not noise (a small sample, a baseline)."""
    return [f for f in findings if f.kind not in CONTEXT_KINDS and not f.noise]


@dataclass(frozen=True)
class Check:
    held: bool
    words: str


@dataclass(frozen=True)
class Evidence:
    """The evidence of one diagnosis, with the questions the decision tree asks of it."""

    findings: tuple[Finding, ...]
    target: TargetSpec
    symptom_kinds: frozenset[str]
    tolerance: timedelta

    def symptom(self, exclude: Sequence[str] = ()) -> Finding | None:
        """The earliest-beginning symptom finding (not of the cause's own kinds)."""
        hits = [f for f in problems(self.findings) if f.kind in self.symptom_kinds and f.kind not in exclude]
        return min(hits, key=lambda f: f.began) if hits else None

    def precedes(self, cause: Finding, symptom: Finding) -> bool:
        return cause.began <= symptom.began + self.tolerance

    def not_the_cause(self, change: Finding, symptom: Finding) -> str:
        return (f"not the cause: {_name(change)} landed {hhmm(change.began)}, "
                f"{_what(symptom)} began {hhmm(symptom.began)} ({symptom.onset_from or 'first seen'})")

    def came_before(self, change: Finding, symptom: Finding) -> str:
        gap = (symptom.began - change.began) / timedelta(minutes=1)
        return (f"{_name(change)} landed {hhmm(change.began)}, {gap:.0f} min before "
                f"{_what(symptom)} began at {hhmm(symptom.began)} ({symptom.onset_from or 'first seen'})")

    def check(self, name: str, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
        return _CHECKS[name](self, causes, exclude)

    def log_lines(self) -> list[str]:
        """Every error signature and example line the log evidence quotes."""
        out: list[str] = []
        for f in self.findings:
            for group in f.facts.get("top") or []:
                out += [str(group.get("signature") or ""), str(group.get("example") or "")]
        return [line for line in out if line]

    def texts(self) -> list[str]:
        """What the failing evidence says: log lines, then each problem's summary and evidence."""
        return self.log_lines() + [t for f in problems(self.findings) for t in (f.summary, *f.evidence)]

    def naming(self, subject: str) -> str | None:
        """The first error line that names `subject` (its name or its host), if any."""
        tokens = _tokens(subject, self.target)
        for line in self.log_lines():
            if any(re.search(rf"(?<![a-z0-9]){re.escape(tok)}", line, re.IGNORECASE) for tok in tokens):
                return line
        return None

    def every_error_names(self, subject: str) -> bool:
        """Whether every error signature the logs quote names `subject` (one shared cause)."""
        tokens = _tokens(subject, self.target)
        signatures = [str(g.get("signature") or "") for f in self.findings for g in f.facts.get("top") or []]
        return bool(signatures) and all(
            any(re.search(rf"(?<![a-z0-9]){re.escape(tok)}", sig, re.IGNORECASE) for tok in tokens)
            for sig in signatures)

    def flag_match(self, flag: FlagSpec) -> str | None:
        """Why the failing evidence is about `flag`, or None (always None when it declares nothing)."""
        scope = flag.governs
        subjects = {f.subject for f in problems(self.findings)}
        for component in scope.components:
            if component in subjects:
                return f"{flag.name} governs {component}, which is failing"
        for text in self.texts():
            route = next((r for r in scope.routes if r in text), None)
            if route:
                return f"{flag.name} governs route {route}: {quote(text)}"
            pattern = next((p for p in scope.signatures if re.search(p, text)), None)
            if pattern:
                return f"{flag.name} governs errors like /{pattern}/: {quote(text)}"
        return None


def quote(text: str) -> str:
    return f"\"{shorten(text, 140)}\""


def _name(f: Finding) -> str:
    if f.kind == "recent_deploy":
        short = f.facts.get("short")
        return f"deploy {short}" if short else f"rollout of revision {f.facts.get('revision')}"
    return f"{f.subject} ({f.kind.replace('_', ' ')})"


def _what(symptom: Finding) -> str:
    return {"error_spike": "errors", "crash_loop": "crashes", "oom_killed": "OOM kills"}.get(
        symptom.kind, symptom.kind.replace("_", " "))


def _tokens(subject: str, target: TargetSpec) -> set[str]:
    """Words that name a subject in a log line: its name, its host, the host's distinctive labels."""
    name = subject.removeprefix("postgres:")
    tokens = {name} if len(name) >= 3 else set()
    if subject.startswith("postgres:"):
        tokens |= {"postgres", "psycopg", "pg_"}
    dep = target.dependency(subject)
    urls = [str(u) for u in (dep.url, dep.statuspage_url) if u] if dep else []
    for host in {urlsplit(u).hostname or "" for u in urls}:
        tokens.add(host)
        tokens |= {label for label in host.split(".") if len(label) >= 4 and label not in _GENERIC_LABELS
                   and not label.isdigit()}
    return {t for t in tokens if t}


def _logs_name_cause(ev: Evidence, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
    for cause in causes:
        line = ev.naming(cause.subject)
        if line:
            return Check(True, f"the app's errors name {cause.subject}: {quote(line)}")
    subjects = ", ".join(sorted({c.subject for c in causes}))
    return Check(False, f"no error line in the app's logs names {subjects}")


def _precedes(ev: Evidence, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
    symptom = ev.symptom(exclude)
    timed = [c for c in causes if c.onset is not None]
    if symptom is None or not timed:
        missing = "no symptom to compare with" if symptom is None else "its evidence carries no start time"
        return Check(False, f"cannot tell whether {_name(causes[0])} began first: {missing}")
    first = min(timed, key=lambda c: c.began)
    when = f"{_name(first)} began {hhmm(first.began)} ({first.onset_from})"
    if ev.precedes(first, symptom):
        return Check(True, f"{when}, before {_what(symptom)} at {hhmm(symptom.began)}")
    return Check(False, f"{when}, after {_what(symptom)} began at {hhmm(symptom.began)}")


def _touches_runtime(ev: Evidence, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
    for change in causes:
        if change.facts.get("docs_only"):
            files = ", ".join(change.facts.get("files") or [])
            return Check(False, f"{_name(change)} is docs-only ({shorten(files, 100)})")
    touched = list(dict.fromkeys(name for c in causes for name in c.facts.get("files") or []))
    return Check(True, f"{_name(causes[0])} touched {shorten(', '.join(touched), 100)}" if touched
                 else f"{_name(causes[0])} changed the running workload")


def _changes_image(ev: Evidence, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
    for change in causes:
        if change.facts.get("image_changed"):
            return Check(True, f"{_name(change)} changed the image {change.facts.get('previous_image')} "
                               f"-> {change.facts.get('image')}")
    return Check(False, f"{_name(causes[0])} changed no container image")


def _change_put_fault(ev: Evidence, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
    """With a root cause found in the cluster, a rollback helps only if the change put it there."""
    faults = [f for f in ev.findings if "root_cause" in f.facts]
    if not faults:
        return Check(True, "no cluster fault found that a rollback could not undo")
    from_change = [f for f in faults if f.facts.get("from_change")]
    if from_change:
        return Check(True, f"{_name(causes[0])} put {from_change[0].kind.replace('_', ' ')} there "
                           f"({from_change[0].subject}): undoing it restores the workload")
    return Check(False, f"{faults[0].kind.replace('_', ' ')} ({faults[0].subject}) is not in what "
                        f"{_name(causes[0])} changed: a rollback would not fix it")


REVERT = re.compile(r'^\s*revert\b\s*"?', re.IGNORECASE)


def is_revert(subject: str) -> bool:
    """A commit that undoes one: `Revert "X"` is; `Revert "Revert "X""` puts X back, so it is a
    re-deploy of X, not a revert (odd nesting undoes, even nesting reinstates)."""
    depth = 0
    while (match := REVERT.match(subject)) is not None:
        depth, subject = depth + 1, subject[match.end():]
    return depth % 2 == 1
CONFIG_ONLY = re.compile(r"(^|[/_.-])(configmaps?|cm|secrets?|sealed-?secrets?)([/_.-]|$)|\.env$",
                         re.IGNORECASE)


def _rollback_undoes(ev: Evidence, causes: Sequence[Finding], exclude: Sequence[str]) -> Check:
    """A rollback puts the previous pod template back. That undoes a change only when the
    change was to the template: a rollout that was itself a revert would re-deploy what it took
    out, and a ConfigMap/Secret-only change stays as it is (revert that change instead)."""
    for change in causes:
        subject = str(change.facts.get("subject") or "")
        if is_revert(subject):
            return Check(False, f"{_name(change)} is itself a revert ({shorten(subject, 80)}): rolling it "
                                "back would re-deploy the version it took out")
        undone = next((f for f in ev.findings if f.kind == "recent_deploy" and f is not change and subject
                       and is_revert(str(f.facts.get("subject") or ""))
                       and subject in str(f.facts["subject"])), None)
        if undone is not None:
            return Check(False, f"{_name(change)} was already reverted by {_name(undone)}: rolling back "
                                "either one re-deploys a version that was taken out")
        files = change.facts.get("files") or []
        if files and all(CONFIG_ONLY.search(f) for f in files):
            return Check(False, f"{_name(change)} changed only ConfigMap/Secret manifests "
                                f"({shorten(', '.join(files), 100)}): an image rollback would leave them "
                                f"as they are; revert that change (git revert {change.facts.get('short')}) "
                                "or investigate")
    return Check(True, f"rolling back undoes {_name(causes[0])}")


_CHECKS = {"change_put_fault_there": _change_put_fault, "logs_name_cause": _logs_name_cause,
           "cause_precedes_symptom": _precedes, "change_touches_runtime": _touches_runtime,
           "change_changes_image": _changes_image, "rollback_undoes_change": _rollback_undoes}
