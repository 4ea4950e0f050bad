"""Probe `app-metrics`: the playbook's `curl .../metrics | grep errors`, done as a rate, for
teams without Prometheus (the `prometheus` probe asks Prometheus instead).

Scrapes the app's Prometheus endpoint twice, `scrape_interval_s` apart (the window), and turns
the error counters into an error rate (errors / requests between the scrapes): finding
`error_spike`. With `service`, every ready pod behind the Service is scraped on its own (its
EndpointSlices) and the pods' deltas are added up (`probes/app_metrics_pods.py`), with the sample
size; one URL behind a load balancer could compare two different pods. The counters' lifetime
ratio is the baseline only for a process older than the target's recent-deploy window: in a
younger one it is the failure itself, and the rate is judged on its absolute value. A counter that went down
(the app restarted) counts from zero. Each scrape reads at most
`MetricsSpec.max_body_bytes` (cut at the last whole line; the observation says `truncated`, and
counters past the cut are missing), within the spec's timeout for the whole exchange, following
redirects only on the same host.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import httpx

from agent.model import (
    Finding,
    HemostatError,
    MetricsSpec,
    Observation,
    PermanentError,
    Rate,
    Severity,
    TargetSpec,
    judge_rate,
)
from agent.model.bounded_http import cap_note, fetch
from agent.model.context import ProbeContext
from agent.model.rate import LIFETIME
from agent.model.rbac import KubeRule
from probes._kube import service_slices
from probes.app_metrics_pods import combined, delta, pod_urls
from probes.http_health import safe_url


class AppMetricsProbe:
    name = "app-metrics"
    summary = "the app's Prometheus error counters (each pod behind a Service), as an error rate"
    kube_rules = (KubeRule("discovery.k8s.io", "endpointslices", ("list",), why="the pods behind `service`"),)

    def applies_to(self, target: TargetSpec) -> bool:
        return target.metrics is not None

    def kube_rules_for(self, target: TargetSpec) -> tuple[KubeRule, ...]:
        """What `hemostat doctor` checks: the cluster is read only to find the pods behind a Service."""
        return self.kube_rules if target.metrics is not None and target.metrics.service else ()

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        spec = target.metrics
        if spec is None:
            raise PermanentError("target has no metrics configured", code="unconfigured")
        if spec.service is not None:
            return {**await _collect_pods(target, spec, ctx), **error_alerts(ctx)}
        assert spec.url is not None  # the spec holds exactly one of url and service
        url = spec.url.resolve()
        key = f"http:{safe_url(url)}"
        async with httpx.AsyncClient(trust_env=False, verify=ctx.tls()) as client:
            first = await _scrape(client, spec, url, ctx, key)
            second, waited = first, 0.0
            while (gap := _widen(spec, target, [first], [second], waited)) is not None:  # too few yet
                await asyncio.sleep(gap)
                second, waited = await _scrape(client, spec, url, ctx, key), waited + gap
        data = {"url": safe_url(url), "scrapes": [first, second], **error_alerts(ctx)}
        if first.get("truncated") or second.get("truncated"):
            data["truncated"] = cap_note(spec.max_body_bytes)
        return data

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        data = observation.data
        if "pods" in data:
            found = combined(data["pods"])
            if found is None:
                return []
            (rate, baseline), first = found, min(p["scrapes"][0]["at"] for p in data["pods"]
                                                 if "at" in p["scrapes"][0])
            source = f"{rate['pods']} pods behind Service {data['service']}"
            firsts = [p["scrapes"][0] for p in data["pods"] if "error" not in p["scrapes"][0]]
            baseline, why = _lifetime(baseline, _age(firsts, rate), target)
            return _judge(rate, target, now, self.name, source, baseline, datetime.fromisoformat(first),
                          note=why, alerts=data.get("alerts") or [])
        scrapes = data.get("scrapes", [])
        if len(scrapes) < 2:
            return []
        rate = error_rate(scrapes[0], scrapes[1])
        baseline, why = _lifetime(_baseline(scrapes[0]), _age([scrapes[0]], rate), target)
        return _judge(rate, target, now, self.name, f"GET {data.get('url', '')}",
                      baseline, datetime.fromisoformat(scrapes[0]["at"]), data.get("truncated"), why,
                      data.get("alerts") or [])


async def _collect_pods(target: TargetSpec, spec: MetricsSpec, ctx: ProbeContext) -> dict[str, Any]:
    """Each ready pod behind the Service scraped twice, all at once; a pod that fails is noted,
    all of them failing is the probe's gap."""
    assert spec.service is not None
    namespace = target.namespace
    pods = pod_urls(await service_slices(ctx, namespace, spec.service), spec)
    if not pods:
        raise PermanentError(f"no ready pod behind Service {namespace}/{spec.service}",
                             code="metrics_no_pods")
    async with httpx.AsyncClient(trust_env=False, verify=ctx.tls()) as client:
        first = await asyncio.gather(*(_noted(client, spec, ctx, url) for _, url in pods))
        second, waited = first, 0.0
        while (gap := _widen(spec, target, first, second, waited)) is not None:
            await asyncio.sleep(gap)
            second = await asyncio.gather(*(_noted(client, spec, ctx, url) for _, url in pods))
            waited += gap
    if all("error" in scrape for scrape in second):
        raise PermanentError(f"no pod behind Service {spec.service} answered: {second[0]['error']}",
                             code="metrics_unreachable")
    return {"service": f"{namespace}/{spec.service}", "pods": [
        {"pod": pod, "url": safe_url(url), "scrapes": [a, b]}
        for (pod, url), a, b in zip(pods, first, second, strict=True)]}


def _widen(spec: MetricsSpec, target: TargetSpec, first: list[dict[str, Any]],
           second: list[dict[str, Any]], waited: float) -> float | None:
    """How long to wait before scraping again (`waited`: the window so far), or None to judge
    now. Always once (the second scrape, `scrape_interval_s` later); then, while the window saw
    fewer than `min_requests` requests, the window is doubled up to `max_window_s`: a small
    sample is looked at longer before it is judged, not given up on."""
    if waited == 0:
        return spec.scrape_interval_s
    pairs = [(a, b) for a, b in zip(first, second, strict=True) if "error" not in a and "error" not in b]
    if not pairs:
        return None
    served = sum(delta(a.get("requests"), b.get("requests")) or 0 for a, b in pairs)
    gap = min(waited, spec.max_window_s - waited)  # the window doubles, up to its bound
    return gap if served < target.thresholds.min_requests and gap > 0 else None


def error_alerts(ctx: ProbeContext) -> dict[str, Any]:
    """The firing alerts behind this diagnosis that are about errors: Prometheus judged them over
    their own window, which is evidence where our window saw too few requests."""
    fired = [{"name": str((a.get("labels") or {}).get("alertname", "?")), "since": str(a.get("startsAt", "")),
              "value": (a.get("annotations") or {}).get("value")}
             for a in ctx.alerts if a.get("status", "firing") == "firing" and _about_errors(a)]
    return {"alerts": fired} if fired else {}


def _about_errors(alert: dict[str, Any]) -> bool:
    """An alert on the error rate (its name, summary or expression says errors or 5xx); a
    latency alert vouches for nothing about errors."""
    words = " ".join([str((alert.get("labels") or {}).get("alertname", "")),
                      *(str(v) for v in (alert.get("annotations") or {}).values()),
                      unquote(str(alert.get("generatorURL", "")))]).lower()
    return any(w in words for w in ("error", "5xx", "code=~\"5", "status=~\"5", "fail"))


async def _noted(client: httpx.AsyncClient, spec: MetricsSpec, ctx: ProbeContext, url: str) -> dict[str, Any]:
    try:
        return await _scrape(client, spec, url, ctx, f"http:{safe_url(url)}")
    except HemostatError as e:
        return {"error": str(e)}


async def _scrape(client: httpx.AsyncClient, spec: MetricsSpec, url: str, ctx: ProbeContext,
                  key: str) -> dict[str, Any]:
    try:
        with ctx.breakers.guard(key):
            answer = await fetch(client, "GET", url, timeout_s=spec.timeout_s,
                                 max_bytes=spec.max_body_bytes, follow=True)
            if answer.status >= 400:
                raise PermanentError(f"metrics endpoint answered HTTP {answer.status}", code="metrics_http")
    except httpx.TimeoutException as e:
        raise PermanentError(f"metrics endpoint gave no answer within {spec.timeout_s:g}s",
                             code="metrics_timeout") from e
    except httpx.HTTPError as e:
        raise PermanentError(f"metrics endpoint unreachable ({type(e).__name__})",
                             code="metrics_unreachable") from e
    text = answer.text.rsplit("\n", 1)[0] + "\n" if answer.truncated else answer.text  # whole lines only
    scrape = {"at": ctx.now().isoformat(), "errors": sum_counters(text, spec.error_counters),
              "requests": sum_counters(text, spec.request_counters)}
    started = sum_counters(text, [START])
    if started is not None:
        scrape["started"] = started
    return {**scrape, "truncated": True} if answer.truncated else scrape


def sum_counters(text: str, names: list[str]) -> float | None:
    """Sum every sample of the named counters (all label sets); None if none is exposed."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {n.removesuffix("_total") for n in names}
    total, seen = 0.0, False
    try:
        for family in text_string_to_metric_families(text):
            if family.name.removesuffix("_total") not in wanted:
                continue
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket", "_count", "_sum")):
                    continue
                total, seen = total + sample.value, True
    except ValueError as e:
        raise PermanentError(f"metrics endpoint is not Prometheus text format: {e}",
                             code="metrics_garbage") from e
    return total if seen else None


def error_rate(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    errors = delta(first["errors"], second["errors"])
    requests = delta(first["requests"], second["requests"])
    seconds = max((datetime.fromisoformat(second["at"])
                   - datetime.fromisoformat(first["at"])).total_seconds(), 1e-3)
    ratio = errors / requests if errors is not None and requests else None
    per_min = errors * 60 / seconds if errors is not None else None
    return {"errors": errors, "requests": requests, "ratio": ratio, "per_minute": per_min,
            "seconds": seconds}


def _baseline(first: dict[str, Any]) -> float | None:
    """The counters' lifetime ratio at the first scrape: what this app's error ratio has been
    since it started, the only history two scrapes carry (a baseline from Prometheus or the
    ledger's sweeps, when another probe has one, is better)."""
    errors, requests = first.get("errors"), first.get("requests")
    return errors / requests if errors is not None and requests else None


START = "process_start_time_seconds"  # the client libraries' standard gauge (Unix seconds)


def _age(firsts: list[dict[str, Any]], rate: dict[str, Any]) -> float | None:
    """How long the scraped process(es) have run, in seconds: from `process_start_time_seconds`
    when every scrape has it, else the lifetime requests over the current request rate."""
    if firsts and all("started" in f for f in firsts):
        return min(datetime.fromisoformat(f["at"]).timestamp() - float(f["started"]) for f in firsts)
    lifetime = sum(float(f.get("requests") or 0) for f in firsts)
    per_s = (rate.get("requests") or 0) / max(float(rate["seconds"]), 1e-3)
    return lifetime / per_s if per_s > 0 else None


def _lifetime(baseline: float | None, age: float | None, target: TargetSpec) -> tuple[float | None, str]:
    """The lifetime ratio as a baseline, or (None, why not). A process younger than the
    target's recent-deploy window may be the suspected change itself: the ratio since it started
    *is* the failure (a fresh deploy failing from its first request), never its normal, so it
    is judged on its absolute rate instead."""
    if baseline is None or age is None or age >= target.thresholds.recent_deploy_minutes * 60:
        return baseline, ""
    return None, (f"no baseline: the process is about {max(age, 0) / 60:.0f} min old, so its lifetime "
                  "ratio is this failure, not its normal; judged on the absolute rate")


def _vouched(alert: dict[str, Any], judged: Rate, needed: int) -> str:
    value = f", value {alert['value']}" if alert.get("value") not in (None, "") else ""
    since = str(alert.get("since") or "")[11:16]
    return (f": few requests in this window (n={judged.samples}, needs {needed}), but alert "
            f"{alert['name']} is firing{f' since {since}' if since else ''}{value}, judged by "
            "Prometheus over its own window")


def measured(rate: dict[str, Any], baseline: float | None, target: TargetSpec) -> Rate | None:
    """The ratio as a `Rate` judged against the target's sample size and baseline thresholds."""
    if rate["ratio"] is None:
        return None
    t = target.thresholds
    samples = int(rate["requests"] or 0)
    return Rate(rate["ratio"], "ratio", rate["seconds"], samples=samples, baseline=baseline,
                baseline_from=LIFETIME if baseline is not None else "",
                verdict=judge_rate(rate["ratio"], samples, baseline, t.min_requests, t.baseline_factor))


def _judge(rate: dict[str, Any], target: TargetSpec, now: datetime, probe: str,
           source: str, baseline: float | None = None, onset: datetime | None = None,
           truncated: str | None = None, note: str = "",
           alerts: list[dict[str, Any]] | None = None) -> list[Finding]:
    t = target.thresholds
    ratio, per_min = rate["ratio"], rate["per_minute"]
    spiking = (ratio is not None and ratio >= t.error_rate) or (
        ratio is None and per_min is not None and per_min >= t.errors_per_minute)
    if not spiking:
        return []
    judged = measured(rate, baseline, target)
    vouched = ""
    if judged is not None and judged.verdict == "small_sample" and alerts:
        judged, vouched = replace(judged, verdict="spike"), _vouched(alerts[0], judged, t.min_requests)
    noise = judged is not None and judged.verdict != "spike"
    outage = ratio is not None and ratio >= t.error_rate_sev1
    what = f"{ratio:.0%} of requests failing" if ratio is not None else f"{per_min:.0f} errors/min"
    why = {"small_sample": f": too few requests to judge (n={judged.samples}, needs {t.min_requests})",
           "at_baseline": ": no worse than its baseline"}.get(judged.verdict, vouched) if judged else ""
    return [Finding(
        kind="error_spike", subject=target.deployment or target.name, observed_at=now, probe=probe,
        severity=Severity.SEV4 if noise else Severity.SEV1 if outage else Severity.SEV2,
        summary=f"{what} ({rate['errors']:.0f} errors / {rate['requests'] or 0:.0f} requests "
                f"in {rate['seconds']:.0f}s){why}",
        evidence=(f"{source}: errors +{rate['errors']:.0f}, requests +{rate['requests'] or 0:.0f}",
                  *([judged.describe()] if judged else []), *([note] if note else []),
                  *([truncated] if truncated else [])),
        facts={k: (round(v, 4) if isinstance(v, float) else v) for k, v in rate.items()},
        onset=onset, onset_from="first scrape of the window" if onset else "", rate=judged,
    )]
