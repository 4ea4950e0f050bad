"""provider-status: a loopback server answering like an Atlassian Statuspage, or not at all."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.model import DependencySpec, Finding, Observation, PermanentError, TargetSpec, TemporaryError
from agent.model.context import ProbeContext
from probes.provider_status import ProviderStatusProbe, api_base
from tests.loopback import LoopbackServer

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
PAGE = {"id": "kctbh9vrtdwd", "name": "Stripe", "url": "https://status.stripe.com",
        "time_zone": "Etc/UTC", "updated_at": "2026-11-27T02:58:12.000Z"}
OPERATIONAL = {"page": PAGE, "status": {"indicator": "none", "description": "All Systems Operational"}}
MAJOR = {"page": PAGE, "status": {"indicator": "major", "description": "Partial System Outage"}}
NO_INCIDENTS: dict[str, Any] = {"page": PAGE, "incidents": []}
INCIDENT = {
    "id": "p31zjtct2jer", "name": "Elevated API error rates", "status": "investigating",
    "created_at": "2026-11-27T02:43:10.000Z", "updated_at": "2026-11-27T02:55:00.000Z",
    "monitoring_at": None, "resolved_at": None, "impact": "major", "shortlink": "https://stspg.io/x1",
    "started_at": "2026-11-27T02:41:00.000Z", "page_id": "kctbh9vrtdwd",
    "incident_updates": [{"id": "h3", "status": "investigating", "incident_id": "p31zjtct2jer",
                          "body": "We are investigating elevated error rates on the Charges API.",
                          "created_at": "2026-11-27T02:43:10.000Z",
                          "affected_components": [{"code": "c1", "name": "API",
                                                   "old_status": "operational",
                                                   "new_status": "major_outage"}]}],
    "components": [{"id": "c1", "name": "API", "status": "major_outage", "position": 1,
                    "showcase": True, "group": False, "only_show_if_degraded": False}],
}


def _serve(loopback: LoopbackServer, status: Any, incidents: Any, **route: Any) -> str:
    route.setdefault("content_type", "application/json")
    for path, body in (("/api/v2/status.json", status), ("/api/v2/incidents/unresolved.json", incidents)):
        loopback.route(path, body=body if isinstance(body, str) else json.dumps(body), **route)
    return loopback.url


def _target(*urls: str, critical: bool = True) -> TargetSpec:
    names = ("stripe", "twilio")
    return TargetSpec(name="checkout", dependencies=[
        DependencySpec(name=name, url="http://127.0.0.1:9/health", statuspage_url=url,
                       critical=critical) for name, url in zip(names, urls, strict=False)])


def _diagnose(target: TargetSpec, timeout_s: float = 5.0) -> tuple[Observation, list[Finding]]:
    probe = ProviderStatusProbe()
    data = asyncio.run(probe.collect(target, ProbeContext(now=lambda: NOW, timeout_s=timeout_s)))
    obs = Observation(probe.name, target.name, NOW, json.loads(json.dumps(data)))  # JSON-able
    return obs, probe.analyze(obs, target, NOW)


def test_operational_page_gives_no_finding(loopback: LoopbackServer) -> None:
    obs, findings = _diagnose(_target(_serve(loopback, OPERATIONAL, NO_INCIDENTS)))
    assert findings == []
    assert obs.data["pages"][0]["indicator"] == "none"


def test_major_outage_with_an_incident_is_a_provider_incident(loopback: LoopbackServer) -> None:
    url = _serve(loopback, MAJOR, {"page": PAGE, "incidents": [INCIDENT]})
    _, [finding] = _diagnose(_target(url))
    assert finding.kind == "provider_incident" and finding.subject == "stripe"
    assert finding.summary == ("Stripe reports a major outage since 02:41: "
                               "Elevated API error rates (investigating)")
    assert finding.severity.label() == "SEV-2"
    assert finding.evidence == ("Elevated API error rates: investigating, impact major; components API; "
                                "latest update: We are investigating elevated error rates on the "
                                "Charges API.",)
    assert finding.facts["started_at"] == "2026-11-27T02:41:00.000Z"
    assert (finding.onset, finding.onset_from) == (datetime(2026, 11, 27, 2, 41, tzinfo=UTC),
                                                   "the provider's incident start")


def test_critical_indicator_on_a_non_critical_dependency_is_one_step_milder(
        loopback: LoopbackServer) -> None:
    critical = {"page": PAGE, "status": {"indicator": "critical", "description": "Major System Outage"}}
    _, [finding] = _diagnose(_target(_serve(loopback, critical, NO_INCIDENTS), critical=False))
    assert finding.severity.label() == "SEV-2"
    assert finding.summary == "Stripe reports a critical outage: Major System Outage"


def test_an_incident_from_yesterday_names_the_day(loopback: LoopbackServer) -> None:
    old = {**INCIDENT, "impact": "minor", "started_at": "2026-11-26T22:05:00Z"}
    minor = {"page": PAGE, "status": {"indicator": "minor", "description": "Minor Service Outage"}}
    _, [finding] = _diagnose(_target(_serve(loopback, minor, {"incidents": [old]})))
    assert finding.summary.startswith("Stripe reports a minor outage since Nov 26 22:05: ")
    assert finding.severity.label() == "SEV-3"


def test_html_page_is_a_named_gap_not_a_crash(loopback: LoopbackServer) -> None:
    html = "<!DOCTYPE html><html><body>Sign in to the hotel wifi</body></html>"
    url = _serve(loopback, html, html, content_type="text/html")
    with pytest.raises(PermanentError) as err:
        _diagnose(_target(url))
    assert err.value.code == "statuspage_garbage"
    assert str(err.value).startswith(f"{url}/api/v2/")
    assert "is not a Statuspage API: answered an HTML page (text/html): '<!DOCTYPE html>" in str(err.value)


def test_json_of_the_wrong_shape_is_garbage(loopback: LoopbackServer) -> None:
    url = _serve(loopback, {"status": "ok"}, NO_INCIDENTS)
    with pytest.raises(PermanentError) as err:
        _diagnose(_target(url))
    assert str(err.value) == (f"{url}/api/v2/status.json is not a Statuspage API: "
                              "no known status.indicator (got None)")
    assert err.value.code == "statuspage_garbage"


def test_truncated_json_is_garbage(loopback: LoopbackServer) -> None:
    url = _serve(loopback, OPERATIONAL, '{"page": {"id": "kctb', content_type="application/json")
    with pytest.raises(PermanentError) as err:
        _diagnose(_target(url))
    assert err.value.code == "statuspage_garbage" and "answered garbage (application/json)" in str(err.value)


def test_hanging_page_times_out(loopback: LoopbackServer) -> None:
    url = _serve(loopback, OPERATIONAL, NO_INCIDENTS, delay_s=30)
    with pytest.raises(TemporaryError) as err:
        _diagnose(_target(url), timeout_s=0.25)
    assert err.value.code == "statuspage_timeout" and "no answer within 0.2s" in str(err.value)


def test_one_bad_page_does_not_hide_the_other(loopback: LoopbackServer) -> None:
    good = _serve(loopback, MAJOR, {"incidents": [INCIDENT]})
    obs, [finding] = _diagnose(_target(good, "http://127.0.0.1:9/"))
    assert finding.subject == "stripe"
    assert obs.data["pages"][1]["error_code"] == "statuspage_unreachable"


def test_api_base_accepts_page_or_api_urls() -> None:
    assert api_base("https://status.stripe.com/") == "https://status.stripe.com"
    assert api_base("https://status.stripe.com/api/v2/summary.json") == "https://status.stripe.com"


def test_applies_only_to_targets_with_a_status_page() -> None:
    assert not ProviderStatusProbe().applies_to(TargetSpec(name="checkout"))
