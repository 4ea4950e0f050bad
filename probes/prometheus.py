"""Probe `prometheus`: what a service's own metrics say, asked of Prometheus in PromQL.

Per target (`prometheus:` in its config): the error ratio of the request counters, latency
quantiles from the request-duration histogram, CPU and memory saturation from cAdvisor and
kube-state-metrics, and a multi-window SLO burn rate; for an alert, its own expression (from
its `generatorURL`) re-evaluated over the last hour. Every query runs at once. Ranges give the
value now and the onset; instant queries a day and a week back give the baseline.

Prometheus unreachable is a gap for the whole probe; one query failing is a named gap for that
query (`probe_failed`), never silence. Queries are checked at start-up (`validate`): a syntax
error comes back as Prometheus words it, naming the config field.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx

from agent.model import Observation, PermanentError, TargetSpec
from agent.model.context import CircuitOpenError, ProbeContext
from agent.model.prometheus import PrometheusSpec
from probes.http_health import safe_url
from probes.prometheus_api import QueryFailed, Unreachable, ask, syntax_error
from probes.prometheus_findings import Judge
from probes.prometheus_queries import alert_expression, every_query, plan


class PrometheusProbe:
    name = "prometheus"
    summary = "error ratio, latency quantiles, saturation and SLO burn from Prometheus (PromQL)"

    def applies_to(self, target: TargetSpec) -> bool:
        return target.prometheus is not None

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        spec = _spec(target)
        alert = _alert(ctx)
        asks = plan(target, spec, alert["expr"] if alert else None)
        now = ctx.now().timestamp()
        key = f"http:{safe_url(spec.url.resolve())}"
        async with httpx.AsyncClient(trust_env=False, verify=ctx.tls()) as client:
            answers = await asyncio.gather(*(_guarded(ctx, key, ask(client, spec, a, now))
                                             for a in asks.values()), return_exceptions=True)
        return _observation(spec, now, dict(zip(asks, answers, strict=True)), alert)

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Any]:
        if not observation.data.get("series") and not observation.data.get("failed"):
            return []  # nothing was asked
        return Judge(observation.data, target, _spec(target), now).findings()

    async def validate(self, target: TargetSpec, ctx: ProbeContext) -> list[tuple[str, str]]:
        """(config field under the target, Prometheus's parse error) for each query it rejects."""
        spec = _spec(target)
        queries = every_query(target, spec)
        async with httpx.AsyncClient(trust_env=False, verify=ctx.tls()) as client:
            errors = await asyncio.gather(*(syntax_error(client, spec, q) for q in queries.values()))
        return [(f"prometheus.{field}", error)
                for field, error in zip(queries, errors, strict=True) if error is not None]


def _spec(target: TargetSpec) -> PrometheusSpec:
    if target.prometheus is None:
        raise PermanentError("target has no prometheus configured", code="unconfigured")
    return target.prometheus


def _alert(ctx: ProbeContext) -> dict[str, str] | None:
    """The first firing alert that says which expression fired it."""
    for alert in ctx.alerts:
        expr = alert_expression(str(alert.get("generatorURL", "")))
        if expr:
            return {"name": str(alert.get("labels", {}).get("alertname", "?")), "expr": expr}
    return None


async def _guarded(ctx: ProbeContext, key: str, call: Any) -> Any:
    """One breaker per Prometheus: a dead one costs one timeout per `fail_max` collections."""
    with ctx.breakers.guard(key):
        return await call


def _observation(spec: PrometheusSpec, now: float, answers: dict[str, Any],
                 alert: dict[str, str] | None) -> dict[str, Any]:
    down = [a for a in answers.values() if isinstance(a, Unreachable | CircuitOpenError)]
    if len(down) == len(answers):
        raise PermanentError(f"Prometheus at {safe_url(spec.url.resolve())} is unreachable ({down[0]})",
                             code="prometheus_unreachable")
    data: dict[str, Any] = {"url": safe_url(spec.url.resolve()), "at": now, "step_s": spec.step_s,
                            "series": {}, "values": {}, "failed": {}, "alert": alert}
    for key, answer in answers.items():
        if isinstance(answer, QueryFailed | Unreachable | CircuitOpenError):
            data["failed"][key] = str(answer) or type(answer).__name__
        elif isinstance(answer, BaseException):
            raise answer
        elif isinstance(answer, list):
            data["series"][key] = answer
        else:
            data["values"][key] = answer
    return data
