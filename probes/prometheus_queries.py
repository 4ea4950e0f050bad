"""What the `prometheus` probe asks: its queries rendered for one target, and the plan of range
and instant queries one collection runs (all at once).

Pure: the probe does the I/O, start-up validation sends the same rendered queries, so a query
that passes validation is exactly the one the probe runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Template
from urllib.parse import parse_qs, urlsplit

from agent.model import TargetSpec
from agent.model.prometheus import PrometheusSpec, QueryName

DAY_S, WEEK_S = 86_400, 7 * 86_400
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": DAY_S, "w": WEEK_S, "y": 365 * DAY_S}


def seconds(duration: str) -> float:
    """PromQL duration ("1h30m") in seconds; the spec has checked the syntax."""
    return sum(float(n) * _UNITS[unit] for n, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration))


def promql_string(text: str) -> str:
    r"""`text` as the inside of a double-quoted PromQL string: PromQL unquotes it as Go does
    first, where the regex escape `\-` of `web-api` is an "unknown escape sequence"."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _variables(target: TargetSpec, spec: PrometheusSpec, window: str) -> dict[str, str]:
    app = target.deployment or target.name
    base = {"app": app, "namespace": target.namespace, "window": window,
            # Deployment pods are <deployment>-<replicaset hash>-<pod suffix>.
            "pods": promql_string(f"{re.escape(app)}-[a-z0-9]+-[a-z0-9]+"),
            "status_label": spec.status_label, "error_status": spec.error_status}
    base["selector"] = Template(spec.selector).safe_substitute(base)
    return base


def render(target: TargetSpec, spec: PrometheusSpec, name: QueryName, window: str | None = None,
           quantile: float | None = None) -> str:
    """One query, its placeholders filled in for `target` (and `window`, `quantile`)."""
    values = _variables(target, spec, window or spec.window)
    if quantile is not None:
        values["quantile"] = f"{quantile:g}"
    if name == "error_ratio":
        values["errors"] = render(target, spec, "errors", window)
        values["requests"] = render(target, spec, "requests", window)
    return Template(spec.query(name)).safe_substitute(values)


def every_query(target: TargetSpec, spec: PrometheusSpec) -> dict[str, str]:
    """Config field (under `prometheus.`) -> a rendered query, for validation at start-up."""
    names: tuple[QueryName, ...] = ("requests", "errors", "error_ratio", "cpu", "memory")
    out = {f"queries.{n}": render(target, spec, n) for n in names}
    out["queries.latency"] = render(target, spec, "latency", quantile=spec.quantiles[-1])
    return out


@dataclass(frozen=True)
class Ask:
    """One HTTP query: a range over the lookback (value now + onset), or an instant at `ago_s`."""

    expr: str
    range: bool = False
    ago_s: float = 0.0


def plan(target: TargetSpec, spec: PrometheusSpec, alert_expr: str | None = None) -> dict[str, Ask]:
    """Every query one collection runs, by the key the observation stores its answer under."""
    asks: dict[str, Ask] = {"requests": Ask(render(target, spec, "requests"))}
    ratio = render(target, spec, "error_ratio")
    asks.update(_with_baselines("error_ratio", ratio))
    for q in spec.quantiles:
        asks[f"latency:{q:g}"] = Ask(render(target, spec, "latency", quantile=q), range=True)
    top = f"latency:{spec.quantiles[-1]:g}"
    asks.update(_with_baselines(top, asks[top].expr))
    asks["cpu"] = Ask(render(target, spec, "cpu"), range=True)
    asks["memory"] = Ask(render(target, spec, "memory"), range=True)
    windows = {w for b in (spec.slo.windows if spec.slo else []) for w in (b.long, b.short)}
    for window in sorted(windows):
        asks[f"error_ratio[{window}]"] = Ask(render(target, spec, "error_ratio", window))
    if alert_expr:
        asks["alert"] = Ask(alert_expr, range=True)
    return asks


def _with_baselines(key: str, expr: str) -> dict[str, Ask]:
    """The expression now (as a range, for the onset) and at the same moment a day and a week
    ago: an instant query at now-1d is the whole expression `offset 1d`, with no PromQL rewrite."""
    return {key: Ask(expr, range=True), f"{key}@1d": Ask(expr, ago_s=DAY_S),
            f"{key}@1w": Ask(expr, ago_s=WEEK_S)}


def alert_expression(generator_url: str) -> str | None:
    """The PromQL of an alert from its `generatorURL` (Prometheus puts it in `g0.expr`)."""
    if not generator_url:
        return None
    exprs = parse_qs(urlsplit(generator_url).query).get("g0.expr")
    return exprs[0] if exprs else None
