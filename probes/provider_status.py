"""Probe `provider-status`: what a dependency's provider says about itself on its status page.

For every dependency with a `statuspage_url`, reads the Atlassian Statuspage API
(`/api/v2/status.json` for the page-wide indicator, `/api/v2/incidents/unresolved.json` for what
is going on) concurrently, each request bounded by a timeout and guarded by a breaker per page.
Finding `provider_incident` ("Stripe reports a major outage since 02:41: ..."), with a severity
from the indicator or the worst incident impact. An HTML page, a captive portal or garbage JSON is
a gap, never a crash: `PermanentError` with code `statuspage_garbage`. When some pages answer and
others do not, the failures are recorded per dependency and the rest still counts. Each answer
is read up to `BODY_BYTES` (a page that goes on is `statuspage_too_large`, not a memory spike),
and a redirect is followed only on the page's own host or one in `allow_redirects_to`: a status
page moved to a third party does not take the request there.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from agent.model import (
    DependencySpec,
    Finding,
    HemostatError,
    Observation,
    PermanentError,
    Severity,
    TargetSpec,
    TemporaryError,
)
from agent.model.bounded_http import Answer, fetch
from agent.model.context import ProbeContext
from agent.model.redact import truncate
from agent.model.urls import endpoint

BODY_BYTES = 1 << 20  # a Statuspage answer is a few KiB; a MiB is already not one

# Statuspage's indicator (page) and impact (incident) scales, and how bad each is for us.
SEVERITY = {"critical": Severity.SEV1, "major": Severity.SEV2, "minor": Severity.SEV3,
            "maintenance": Severity.SEV4}
WORDS = {"critical": "critical outage", "major": "major outage", "minor": "minor outage",
         "maintenance": "maintenance"}
LEVELS = ("none", *WORDS)


def api_base(url: str) -> str:
    """`https://status.stripe.com` or any of its `/api/v2/...` URLs -> `https://status.stripe.com`
    (the query, where a private page's token lives, is kept apart: see `api_url`)."""
    return url.split("?")[0].split("/api/v2/")[0].rstrip("/")


def api_url(url: str, path: str) -> str:
    """The page's API `path`, with the configured URL's query (a private page's token) after it."""
    query = urlsplit(url).query
    return f"{api_base(url)}/api/v2/{path}" + (f"?{query}" if query else "")


class ProviderStatusProbe:
    name = "provider-status"
    summary = "dependencies' Atlassian Statuspage: page indicator and unresolved incidents"

    def applies_to(self, target: TargetSpec) -> bool:
        return any(dep.statuspage_url for dep in target.dependencies)

    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        deps = [dep for dep in target.dependencies if dep.statuspage_url]
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=ctx.tls(),
                                     headers={"Accept": "application/json"}) as client:
            pages = await asyncio.gather(*(_page(client, dep, ctx) for dep in deps))
        failed = [page for page in pages if "error" in page]
        if failed and len(failed) == len(pages):
            raise failed[0].pop("exception")
        for page in failed:
            page.pop("exception")
        return {"pages": list(pages)}

    def analyze(self, observation: Observation, target: TargetSpec, now: datetime) -> list[Finding]:
        findings = []
        for page in observation.data.get("pages", []):
            dep = target.dependency(page["name"])
            finding = _judge(page, dep.critical if dep else True, now, self.name)
            if finding is not None:
                findings.append(finding)
        return findings


async def _page(client: httpx.AsyncClient, dep: DependencySpec, ctx: ProbeContext) -> dict[str, Any]:
    assert dep.statuspage_url is not None
    result: dict[str, Any] = {"name": dep.name, "url": dep.statuspage_url.describe()}
    try:
        url = dep.statuspage_url.resolve()
        base = result["url"] = endpoint(api_base(url))  # stored and shown: never the query token
        status, unresolved = await asyncio.gather(
            _fetch(client, api_url(url, "status.json"), ctx, dep.allow_redirects_to),
            _fetch(client, api_url(url, "incidents/unresolved.json"), ctx, dep.allow_redirects_to))
        result.update(page_result(status, unresolved, base))
    except HemostatError as e:
        result.update(error=str(e), error_code=e.code, exception=e)
    return result


async def _fetch(client: httpx.AsyncClient, request_url: str, ctx: ProbeContext,
                 also_hosts: list[str]) -> Any:
    timeout = ctx.timeout_s * 0.8  # answer before the runner's own deadline cuts the whole probe
    url = endpoint(request_url)  # what messages name
    try:
        with ctx.breakers.guard(f"statuspage:{urlsplit(url).hostname}"):
            response = await fetch(client, "GET", request_url, timeout_s=timeout, max_bytes=BODY_BYTES,
                                   follow=True, also_hosts=also_hosts)
            if response.status >= 500 or response.status == 429:
                raise TemporaryError(f"{url} answered HTTP {response.status}",
                                     code="statuspage_unavailable", delay=60)
    except httpx.TimeoutException as e:
        raise TemporaryError(f"{url}: no answer within {timeout:g}s", code="statuspage_timeout") from e
    except httpx.HTTPError as e:
        raise TemporaryError(f"{url}: {type(e).__name__}", code="statuspage_unreachable") from e
    if response.status >= 400:
        raise PermanentError(f"{url} answered HTTP {response.status}: is this a Statuspage page?",
                             code="statuspage_http")
    if response.truncated:
        raise PermanentError(f"{url} answered more than {BODY_BYTES >> 10} KiB (truncated there): "
                             "not a Statuspage API", code="statuspage_too_large")
    return _json(response, url)


def _json(response: Answer, url: str) -> Any:
    kind = response.headers.get("content-type", "").split(";")[0] or "no content type"
    try:
        return json.loads(response.body)
    except ValueError as e:
        looks = "an HTML page" if response.text.lstrip()[:1] == "<" else "garbage"
        raise PermanentError(
            f"{url} is not a Statuspage API: answered {looks} ({kind}): "
            f"{truncate(response.text.strip(), 60)!r}", code="statuspage_garbage") from e


def page_result(status: Any, unresolved: Any, base: str) -> dict[str, Any]:
    """A page's indicator and unresolved incidents, from the two API answers (parsed JSON)."""
    return {**_status(status, base), "incidents": _incidents(unresolved, base)}


def _garbage(url: str, why: str) -> PermanentError:
    return PermanentError(f"{url} is not a Statuspage API: {why}", code="statuspage_garbage")


def _status(body: Any, base: str) -> dict[str, Any]:
    status = body.get("status") if isinstance(body, dict) else None
    indicator = status.get("indicator") if isinstance(status, dict) else None
    if indicator not in LEVELS:
        raise _garbage(f"{base}/api/v2/status.json", f"no known status.indicator (got {indicator!r})")
    assert isinstance(status, dict) and isinstance(body, dict)
    page = body.get("page")
    page = page if isinstance(page, dict) else {}
    return {"page": str(page.get("name") or ""), "indicator": indicator,
            "description": str(status.get("description") or "")}


def _incidents(body: Any, base: str) -> list[dict[str, Any]]:
    items = body.get("incidents") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _garbage(f"{base}/api/v2/incidents/unresolved.json", "no list of incidents")
    return [_incident(item) for item in items]


def _incident(item: dict[str, Any]) -> dict[str, Any]:
    updates = [u for u in item.get("incident_updates") or [] if isinstance(u, dict)]
    return {
        "name": truncate(str(item.get("name") or "unnamed incident"), 120),
        "status": str(item.get("status") or "unknown"),
        "impact": str(item.get("impact") or "none"),
        "started_at": item.get("started_at") or item.get("created_at"),
        "components": [str(c.get("name")) for c in item.get("components") or [] if isinstance(c, dict)],
        "update": truncate(str(updates[0].get("body") or ""), 200) if updates else "",
        "link": item.get("shortlink"),
    }


def _worst(page: dict[str, Any]) -> str:
    levels = [page["indicator"], *(i["impact"] for i in page["incidents"])]
    known = [level for level in levels if level in SEVERITY]
    return min(known, key=lambda level: SEVERITY[level]) if known else "none"


def _when(started_at: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(started_at.replace("Z", "+00:00")) if started_at else None
    except ValueError:
        return None


def _since(started_at: str | None, now: datetime) -> str:
    at = _when(started_at)
    if at is None:
        return ""
    when = at.astimezone(now.tzinfo)
    return f" since {when:%H:%M}" if when.date() == now.date() else f" since {when:%b %d %H:%M}"


def _judge(page: dict[str, Any], critical: bool, now: datetime, probe: str) -> Finding | None:
    if "error" in page:
        return None
    level, incidents = _worst(page), page["incidents"]
    if level == "none" and not incidents:
        return None
    who = page["page"] or page["name"]
    severity = SEVERITY.get(level, Severity.SEV4)
    if not critical:
        severity = Severity(min(severity + 1, Severity.SEV4))
    first = min(incidents, key=lambda i: i["started_at"] or "~") if incidents else None
    what = f"{first['name']} ({first['status']})" if first else page["description"]
    since = _since(first["started_at"], now) if first else ""
    return Finding(
        kind="provider_incident", subject=page["name"], severity=severity, observed_at=now,
        probe=probe, summary=f"{who} reports a {WORDS.get(level, 'incident')}{since}: {what}",
        evidence=tuple(_evidence(i) for i in incidents) or (f"{page['url']}: {page['description']}",),
        facts={"indicator": page["indicator"], "level": level, "page": who, "critical": critical,
               "incidents": [i["name"] for i in incidents],
               "started_at": first["started_at"] if first else None},
        onset=_when(first["started_at"]) if first else None,
        onset_from="the provider's incident start" if first and _when(first["started_at"]) else "",
    )


def _evidence(incident: dict[str, Any]) -> str:
    parts = [f"{incident['name']}: {incident['status']}, impact {incident['impact']}"]
    if incident["components"]:
        parts.append("components " + ", ".join(incident["components"][:5]))
    if incident["update"]:
        parts.append(f"latest update: {incident['update']}")
    return truncate("; ".join(parts), 300)
