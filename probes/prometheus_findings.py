"""Pure judgement of what the `prometheus` probe collected: error ratio, latency quantiles,
saturation, SLO burn rate, the alert's own expression, and the queries that failed.

Each finding's onset is the first step of the run of range-query points that still holds at the
end (the condition began then and has not stopped); its baseline is the same expression a day
and a week earlier. Both read only the observation, so a drill replays them exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.model import Finding, Rate, Severity, TargetSpec, judge_rate
from agent.model.prometheus import PrometheusSpec
from agent.model.rate import RateVerdict
from probes.prometheus_queries import seconds

PROBE = "prometheus"
JSON = dict[str, Any]


def onset(points: list[list[float]], threshold: float, step_s: float, end: float) -> float | None:
    """When the condition (value >= threshold) began, if it holds at `end`: the first point of
    the unbroken run of such points ending there; a missing step breaks the run."""
    if not points or points[-1][1] < threshold or end - points[-1][0] > 1.5 * step_s:
        return None
    began = points[-1][0]
    for t, value in reversed(points[:-1]):
        if value < threshold or began - t > 1.5 * step_s:
            break
        began = t
    return began


def _when(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None


def _now(points: list[list[float]], data: JSON) -> float | None:
    """The value at the end of the range, if the series reaches it."""
    if points and data["at"] - points[-1][0] <= 1.5 * data["step_s"]:
        return points[-1][1]
    return None


class Judge:
    """Findings for one observation of one target."""

    def __init__(self, data: JSON, target: TargetSpec, spec: PrometheusSpec, now: datetime) -> None:
        self.data, self.target, self.spec, self.now = data, target, spec, now
        self.subject = target.deployment or target.name

    def findings(self) -> list[Finding]:
        found = [*self._error_ratio(), *self._latency(), *self._saturation(), *self._burn(),
                 *self._alert(), *self._failed(), *self._no_series()]
        return [f for f in found if f is not None]

    def _series(self, key: str) -> list[list[float]]:
        series: list[list[float]] = self.data["series"].get(key) or []
        return series

    def _onset(self, key: str, threshold: float) -> float | None:
        return onset(self._series(key), threshold, self.data["step_s"], self.data["at"])

    def _baseline(self, key: str) -> JSON:
        """The same expression a day and a week ago; `usual` is the higher (this hour's normal)."""
        day, week = self.data["values"].get(f"{key}@1d"), self.data["values"].get(f"{key}@1w")
        known = [v for v in (day, week) if v is not None]
        return {"baseline_1d": day, "baseline_1w": week, "baseline": max(known) if known else None}

    def _finding(self, kind: str, severity: Severity, summary: str, evidence: list[str],
                 began: float | None, rate: Rate | None = None, **facts: Any) -> Finding:
        at = _when(began)
        facts["onset"] = at.isoformat() if at else None
        facts["onset_from"] = "prometheus range query: first step the condition held" if at else ""
        return Finding(kind=kind, subject=self.subject, severity=severity, observed_at=self.now,
                       summary=summary, probe=PROBE, evidence=tuple(evidence),
                       facts={k: round(v, 6) if isinstance(v, float) else v for k, v in facts.items()},
                       onset=at, onset_from=facts["onset_from"], rate=rate)

    def _error_ratio(self) -> list[Finding]:
        t = self.target.thresholds
        ratio = _now(self._series("error_ratio"), self.data)
        if ratio is None or ratio < t.error_rate:
            return []
        rps = self.data["values"].get("requests")
        samples = round(rps * seconds(self.spec.window)) if rps is not None else None
        base = self._baseline("error_ratio")
        usual = base["baseline"]  # this hour's normal: a ratio no worse is not news
        verdict = judge_rate(ratio, samples, usual, t.min_requests, t.baseline_factor)
        normal = verdict != "spike"
        severity = Severity.SEV4 if normal else Severity.SEV1 if ratio >= t.error_rate_sev1 else Severity.SEV2
        note = f"; usual at this hour {usual:.1%}" if usual is not None else ""
        return [self._finding(
            "error_spike", severity,
            f"{ratio:.1%} of requests failing over {self.spec.window} (n={samples}){note}",
            [f"error ratio {ratio:.2%} (threshold {t.error_rate:.0%})",
             f"same hour yesterday {_pct(base['baseline_1d'])}, last week {_pct(base['baseline_1w'])}"],
            self._onset("error_ratio", t.error_rate), _rate(ratio, samples, usual, self.spec.window, verdict),
            ratio=ratio, samples=samples, window=self.spec.window, at_baseline=normal, **base)]

    def _latency(self) -> list[Finding]:
        top = f"latency:{self.spec.quantiles[-1]:g}"
        value = _now(self._series(top), self.data)
        limit = self.spec.latency_slow_ms / 1000
        if value is None or value < limit:
            return []
        quantiles = {f"p{q * 100:g}": _now(self._series(f"latency:{q:g}"), self.data)
                     for q in self.spec.quantiles}
        shown = ", ".join(f"{k} {_ms(v)}" for k, v in quantiles.items())
        base = self._baseline(top)
        return [self._finding(
            "latency_high", Severity.SEV3, f"slow responses: {shown} over {self.spec.window}",
            [f"p{self.spec.quantiles[-1] * 100:g} {_ms(value)} >= {self.spec.latency_slow_ms:g}ms",
             f"same hour yesterday {_ms(base['baseline_1d'])}, last week {_ms(base['baseline_1w'])}"],
            self._onset(top, limit), seconds=value, quantiles_s=quantiles, **base)]

    def _saturation(self) -> list[Finding]:
        t, out = self.target.thresholds, []
        for key, kind, limit in (("cpu", "cpu_saturated", t.cpu_saturated_ratio),
                                 ("memory", "memory_saturated", t.memory_saturated_ratio)):
            ratio = _now(self._series(key), self.data)
            if ratio is not None and ratio >= limit:
                out.append(self._finding(
                    kind, Severity.SEV3, f"busiest pod at {ratio:.0%} of its {key} limit",
                    [f"{key} usage / limit {ratio:.0%} (threshold {limit:.0%}), cAdvisor and "
                     "kube-state-metrics"], self._onset(key, limit), max_ratio=ratio, threshold=limit))
        return out

    def _burn(self) -> list[Finding]:
        slo = self.spec.slo
        if slo is None:
            return []
        budget = 1 - slo.objective
        history, short = self._history_s(), []
        for rule in sorted(slo.windows, key=lambda w: w.severity):
            if history is not None and history < seconds(rule.long):
                short.append(rule.long)  # a rate "over 1h" from minutes of data is not a 1h burn
                continue
            rates = [self.data["values"].get(f"error_ratio[{w}]") for w in (rule.long, rule.short)]
            if any(r is None for r in rates):
                continue
            burn_long, burn_short = (r / budget for r in rates if r is not None)
            if burn_long >= rule.factor and burn_short >= rule.factor:
                return [self._finding(
                    "slo_burn", Severity(rule.severity),
                    f"error budget of the {slo.objective:.2%} SLO burning {burn_long:.1f}x over "
                    f"{rule.long} and {burn_short:.1f}x over {rule.short} (limit {rule.factor:g}x)",
                    [f"error ratio {rates[0]:.2%} over {rule.long}, {rates[1]:.2%} over {rule.short}"],
                    self._onset("error_ratio", budget * rule.factor), burn_long=burn_long,
                    burn_short=burn_short, factor=rule.factor, objective=slo.objective)]
        return [Finding(kind="probe_failed", subject=f"{PROBE}:slo_burn[{window}]", severity=Severity.SEV4,
                        observed_at=self.now, probe=PROBE,
                        summary=f"SLO burn over {window} not judged: Prometheus holds only "
                                f"{(history or 0) / 60:.0f} min of the app's error ratio",
                        facts={"error": f"{(history or 0) / 60:.0f} min of history for a {window} window",
                               "error_code": "prometheus_short_history", "query": f"error_ratio[{window}]"})
                for window in short]

    def _history_s(self) -> float | None:
        """How long Prometheus has held the app's error ratio, when the range shows its start
        (its first point comes after the lookback began); None when it covers the lookback."""
        points = self._series("error_ratio")
        began = self.data["at"] - seconds(self.spec.lookback)
        if not points or points[0][0] <= began + 2 * self.data["step_s"]:
            return None
        return float(self.data["at"] - points[0][0] + seconds(self.spec.window))

    def _alert(self) -> list[Finding]:
        alert = self.data.get("alert")
        if not alert or "alert" in self.data["failed"]:
            return []
        points = self._series("alert")
        began = self._onset("alert", float("-inf"))
        holds = began is not None
        summary = (f"alert {alert['name']} still holds: its expression true since "
                   f"{_when(began):%H:%M:%S}" if holds else
                   f"alert {alert['name']} no longer holds: its expression is false now "
                   f"({len(points)} of the last {self.spec.lookback}'s steps true)")
        return [self._finding("alert_condition", Severity.SEV3 if holds else Severity.SEV4, summary,
                              [f"re-evaluated over {self.spec.lookback}: {alert['expr'][:200]}"],
                              began, holds=holds, steps_true=len(points), alertname=alert["name"])]

    def _failed(self) -> list[Finding]:
        return [Finding(kind="probe_failed", subject=f"{PROBE}:{key}", severity=Severity.SEV4,
                        observed_at=self.now, probe=PROBE,
                        summary=f"prometheus query {key!r} failed: {message}",
                        facts={"error_code": "prometheus_query", "query": key})
                for key, message in sorted(self.data["failed"].items())]


    def _no_series(self) -> list[Finding]:
        """A query that matched no series is a gap, not health: a selector that names no metric
        (a renamed job, a missing label) reads exactly like zero errors otherwise. (The alert's
        own expression matching nothing means it no longer holds: not a gap.)"""
        return [Finding(kind="probe_failed", subject=f"{PROBE}:{key}", severity=Severity.SEV4,
                        observed_at=self.now, probe=PROBE,
                        summary=f"prometheus query {key!r} matched no series: check its selector",
                        facts={"error": f"query {key!r} matched no series over the last {self.spec.lookback}",
                               "error_code": "prometheus_no_series", "query": key})
                for key, points in sorted(self.data["series"].items())
                if not points and key != "alert" and key not in self.data["failed"]]


def _rate(ratio: float, samples: int | None, usual: float | None, window: str,
          verdict: RateVerdict) -> Rate:
    """The ratio as the generic `Rate` triage judges: at its usual level, or on too few
    requests, it is noise."""
    return Rate(ratio, "ratio", seconds(window), samples=samples, baseline=usual,
                baseline_from="prometheus: the same hour a day and a week back" if usual is not None else "",
                verdict=verdict)


def _pct(value: float | None) -> str:
    return f"{value:.2%}" if value is not None else "unknown"


def _ms(value: float | None) -> str:
    return f"{value * 1000:.0f}ms" if value is not None else "unknown"
