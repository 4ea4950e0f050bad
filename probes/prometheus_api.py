"""The Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`) over plain httpx: answers
reduced to plain numbers, failures sorted into "Prometheus is unreachable" (the whole probe is a
gap) and "this query failed" (that query is a named gap; the others still count).
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from agent.model.prometheus import PrometheusSpec
from probes.prometheus_queries import Ask, seconds

Points = list[list[float]]  # [[unix seconds, value], ...]
EPOCH_TEST_TIME = 1.0  # a syntax check evaluates at 1970-01-01: no block is touched


class Unreachable(Exception):
    """Prometheus did not answer (connection refused, timeout, TLS): nothing it says is known."""


class QueryFailed(Exception):
    """Prometheus answered with an error for this query, in its own words."""


async def ask(client: httpx.AsyncClient, spec: PrometheusSpec, item: Ask,
              now: float) -> Points | float | None:
    """A range as points (the worst series at each step), an instant as one value (the worst)."""
    if item.range:
        start = now - seconds(spec.lookback)
        data = await _call(client, spec, "query_range",
                           {"query": item.expr, "start": start, "end": now, "step": spec.step_s})
        return _worst_points(data)
    data = await _call(client, spec, "query", {"query": item.expr, "time": now - item.ago_s})
    return _worst_value(data)


async def syntax_error(client: httpx.AsyncClient, spec: PrometheusSpec, expr: str) -> str | None:
    """Prometheus's own message for a query it cannot parse; None if it parses (or if Prometheus
    cannot be reached: that is a gap at collection time, not a config error)."""
    try:
        await _call(client, spec, "query", {"query": expr, "time": EPOCH_TEST_TIME})
    except QueryFailed as e:
        message = str(e)
        return message if message.startswith("bad_data") else None
    except Unreachable:
        return None
    return None


async def _call(client: httpx.AsyncClient, spec: PrometheusSpec, path: str,
                params: dict[str, Any]) -> Any:
    url = f"{spec.url.resolve().rstrip('/')}/api/v1/{path}"
    try:
        # POST form: long queries stay out of URLs (and proxies' URL length limits).
        response = await client.post(url, data=params, timeout=spec.timeout_s)
    except httpx.HTTPError as e:
        raise Unreachable(f"{type(e).__name__}") from e
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400 or body.get("status") != "success":
        if body.get("errorType"):
            message = str(body.get("error", "")).removeprefix('invalid parameter "query": ')
            raise QueryFailed(f"{body['errorType']}: {message}"[:500])
        raise QueryFailed(f"HTTP {response.status_code} from {path}")
    return body.get("data", {})


def _number(raw: Any) -> float | None:
    value = float(raw)
    return None if math.isnan(value) or math.isinf(value) else value


def _worst_points(data: dict[str, Any]) -> Points:
    worst: dict[float, float] = {}
    for series in data.get("result", []):
        for t, raw in series.get("values", []):
            value = _number(raw)
            if value is not None:
                worst[float(t)] = max(value, worst.get(float(t), value))
    return [[t, worst[t]] for t in sorted(worst)]


def _worst_value(data: dict[str, Any]) -> float | None:
    result = data.get("result", [])
    if data.get("resultType") == "scalar":
        return _number(result[1])
    values = [v for s in result if (v := _number(s["value"][1])) is not None]
    return max(values) if values else None
