"""Probe `http-health`: the playbook's `curl -I https://api.example.com/health`, for every
dependency of the target, concurrently.

Status, latency, connection/TLS errors and timeouts; findings `dependency_down` and
`dependency_slow`. Each endpoint has its own breaker, so a dead dependency costs one timeout
per few sweeps, not one per sweep. URLs are shown without their query string (tokens live there).
A body is never needed, so at most `BODY_BYTES` of it is read (an endless body costs nothing),
within the dependency's timeout for the whole exchange; redirects are reported, not followed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from agent.model import DependencySpec, Finding, Observation, Severity, TargetSpec
from agent.model.bounded_http import fetch
from agent.model.context import CircuitOpenError, ProbeContext
from agent.model.errors import HemostatError
from agent.model.urls import endpoint

BODY_BYTES = 64 * 1024  # read and dropped: the status is the answer


def safe_url(url: str) -> str:
    """scheme://host[:port]/path, dropping credentials and the query string."""
    return endpoint(url)


class HttpHealthProbe:
    name = "http-health"
    summary = "dependency health endpoints: status, latency, TLS and connection errors (curl -I)"

    def applies_to(self, target: TargetSpec) -> bool:
        return bool(target.dependencies)

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=ctx.tls()) as client:
            checks = await asyncio.gather(*(_check(client, dep, ctx) for dep in target.dependencies))
        return {"checks": list(checks),
                "breakers": {k: v for k, v in ctx.breakers.states().items() if k.startswith("http:")}}

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        findings = []
        for check in observation.data.get("checks", []):
            dep = target.dependency(check["name"])
            critical = dep.critical if dep else True
            finding = _judge(check, critical, target.thresholds.dependency_slow_ms, now, self.name)
            if finding is not None:
                findings.append(finding)
        return findings


async def _check(client: httpx.AsyncClient, dep: DependencySpec, ctx: ProbeContext) -> dict[str, Any]:
    started = time.perf_counter()
    status, error, kind, truncated = None, None, None, False
    try:
        url = dep.url.resolve()
        with ctx.breakers.guard(f"http:{safe_url(url)}"):
            answer = await fetch(client, dep.method, url, timeout_s=dep.timeout_s, max_bytes=BODY_BYTES)
            if answer.status >= 500:
                raise _Unhealthy(answer.status)
        status, truncated = answer.status, answer.truncated
    except _Unhealthy as e:
        status = e.status
    except CircuitOpenError as e:
        if not ctx.alerts:  # a sweep: the breaker spares the dead endpoint a timeout per pass
            error, kind = str(e), "circuit_open"
        else:  # an alert is being diagnosed: its own breaker is no evidence, one fresh request is
            fresh = await _fresh(client, dep)
            return {**fresh, "breaker": "open: this is a fresh request past it"}
    except HemostatError as e:  # the URL's reference cannot be read: this check cannot run
        error, kind = str(e), "config"
    except httpx.HTTPError as e:
        error, kind = _describe(e, dep), _kind(e)
    result = check_result(dep, (time.perf_counter() - started) * 1000, status, error, kind)
    return {**result, "body_truncated": True} if truncated else result


async def _fresh(client: httpx.AsyncClient, dep: DependencySpec) -> dict[str, Any]:
    """One request past the endpoint's open breaker (not counted by it): fresh evidence."""
    started = time.perf_counter()
    status, error, kind = None, None, None
    try:
        answer = await fetch(client, dep.method, dep.url.resolve(), timeout_s=dep.timeout_s,
                             max_bytes=BODY_BYTES)
        status = answer.status
    except httpx.HTTPError as e:
        error, kind = _describe(e, dep), _kind(e)
    return check_result(dep, (time.perf_counter() - started) * 1000, status, error, kind)


def check_result(dep: DependencySpec, latency_ms: float, status: int | None = None,
                 error: str | None = None, error_kind: str | None = None) -> dict[str, Any]:
    """One check as the observation records it: the answer's status, or the error and its kind."""
    shown = safe_url(dep.url.resolve()) if dep.url.inline else str(dep.url)  # a reference stays one
    result: dict[str, Any] = {"name": dep.name, "url": shown, "method": dep.method,
                              "expect": dep.expect_status}
    result.update({"status": status} if error is None else {"error": error, "error_kind": error_kind})
    result["latency_ms"] = round(latency_ms, 1)
    return result


class _Unhealthy(Exception):
    """A 5xx answer: counts as a failure for the endpoint's breaker."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _kind(e: httpx.HTTPError) -> str:
    if isinstance(e, httpx.TimeoutException):
        return "timeout"
    if isinstance(e, httpx.ConnectError) and "SSL" in str(e).upper():
        return "tls"
    if isinstance(e, httpx.ConnectError):
        return "connect"
    return "protocol"


def _describe(e: httpx.HTTPError, dep: DependencySpec) -> str:
    kind = _kind(e)
    if kind == "timeout":
        return f"no answer within {dep.timeout_s:g}s"
    if kind == "tls":
        return "TLS handshake failed"
    if kind == "connect":
        return "connection refused or reset"
    return f"bad HTTP answer ({type(e).__name__})"


def _judge(check: dict[str, Any], critical: bool, slow_ms: float, now: datetime,
           probe: str) -> Finding | None:
    name, status = check["name"], check.get("status")
    down = check.get("error") or (status is not None and status not in check["expect"])
    if down:
        why = check.get("error") or f"HTTP {status}"
        if check.get("error_kind") == "circuit_open":
            why = f"not checked now: Hemostat's own breaker for it is open ({why}); no fresh request"
        elif check.get("breaker"):
            why += f" (breaker {check['breaker']})"
        return Finding(
            kind="dependency_down", subject=name, observed_at=now, probe=probe,
            severity=Severity.SEV2 if critical else Severity.SEV3,
            summary=f"{name} is down: {why} ({check['method']} {check['url']})",
            evidence=(f"{check['method']} {check['url']} -> {why} in {check['latency_ms']:.0f} ms",),
            facts={"status": status, "error_kind": check.get("error_kind"),
                   "latency_ms": check["latency_ms"], "critical": critical},
        )
    if check["latency_ms"] > slow_ms:
        return Finding(
            kind="dependency_slow", subject=name, observed_at=now, probe=probe,
            severity=Severity.SEV3,
            summary=f"{name} is slow: {check['latency_ms']:.0f} ms (threshold {slow_ms:.0f} ms)",
            evidence=(f"{check['method']} {check['url']} -> HTTP {status} "
                      f"in {check['latency_ms']:.0f} ms",),
            facts={"status": status, "latency_ms": check["latency_ms"], "critical": critical},
        )
    return None
