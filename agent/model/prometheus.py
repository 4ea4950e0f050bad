"""`prometheus:` in a target: where Prometheus is, which series are the app's, and the PromQL the
`prometheus` probe runs (every query has a default for common conventions and can be overridden).

Queries are templates: `$selector`, `$window`, `$namespace`, `$app`, `$pods`, `$status_label`,
`$error_status` and (latency only) `$quantile` are filled in per target; `error_ratio` may also
use `$errors` and `$requests`, the rendered error and request queries. `$` keeps clear of PromQL's
own braces; `$1` in a `label_replace` is left alone.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.model.urls import UrlRef

QueryName = Literal["requests", "errors", "error_ratio", "latency", "cpu", "memory"]
_DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"  # PromQL's duration syntax

DEFAULT_QUERIES: dict[str, str] = {
    "requests": "sum(rate(http_requests_total{$selector}[$window]))",
    "errors": 'sum(rate(http_requests_total{$selector,$status_label=~"$error_status"}[$window]))',
    "error_ratio": "($errors) / ($requests)",
    "latency": ("histogram_quantile($quantile, sum by (le) "
                "(rate(http_request_duration_seconds_bucket{$selector}[$window])))"),
    # cAdvisor usage over kube-state-metrics limits, per pod; the worst pod is the saturation.
    "cpu": ('max(sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="$namespace",'
            'pod=~"$pods",container!="",container!="POD"}[$window])) / sum by (pod) '
            '(kube_pod_container_resource_limits{namespace="$namespace",pod=~"$pods",resource="cpu"}))'),
    "memory": ('max(sum by (pod) (container_memory_working_set_bytes{namespace="$namespace",'
               'pod=~"$pods",container!="",container!="POD"}) / sum by (pod) '
               '(kube_pod_container_resource_limits{namespace="$namespace",pod=~"$pods",'
               'resource="memory"}))'),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    if not re.match(_DURATION, value):
        raise ValueError(f"{value!r} is not a PromQL duration (like 30s, 5m, 1h)")
    return value


class BurnWindow(_Strict):
    """One multi-window burn-rate rule: both windows above `factor` (Google SRE workbook)."""

    long: str
    short: str
    factor: float = Field(gt=0)
    severity: int = Field(2, ge=1, le=4)

    _check = field_validator("long", "short")(_duration)


class SloSpec(_Strict):
    """An availability SLO on the error ratio; burn rate = error ratio / (1 - objective)."""

    objective: float = Field(0.999, gt=0, lt=1)
    windows: list[BurnWindow] = Field(default_factory=lambda: [
        BurnWindow(long="1h", short="5m", factor=14.4, severity=1),
        BurnWindow(long="6h", short="30m", factor=6, severity=2)])


class PrometheusSpec(_Strict):
    """Where Prometheus answers and how to find the app's series in it."""

    url: UrlRef = Field(description="inline, or {env: NAME} / {file: PATH} when it holds a token")
    selector: str = Field('job="$app"', min_length=1,
                          description="label matchers for the app's request and latency series")
    window: str = Field("5m", description="rate() window of the queries")
    lookback: str = Field("1h", description="how far back a range query looks for the onset")
    step_s: float = Field(15, gt=0, le=3600, description="range-query resolution: onset precision")
    status_label: str = Field("code", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    error_status: str = Field("5..", description="regex on the status label that means an error")
    quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.95, 0.99], min_length=1)
    latency_slow_ms: float = Field(1000, gt=0, description="the highest quantile above this is slow")
    slo: SloSpec | None = Field(default_factory=SloSpec)
    queries: dict[QueryName, str] = Field(default_factory=dict, description="overrides")
    timeout_s: float = Field(5.0, gt=0, le=60)

    _check = field_validator("window", "lookback")(_duration)

    @field_validator("quantiles")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < q < 1 for q in value):
            raise ValueError("quantiles are fractions between 0 and 1, like 0.99")
        return sorted(value)

    def query(self, name: QueryName) -> str:
        return self.queries.get(name) or DEFAULT_QUERIES[name]
