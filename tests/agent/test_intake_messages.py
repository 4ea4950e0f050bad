"""A webhook body Hemostat cannot take gets an answer that says what is wrong and where: a legacy
(pre-8) Grafana alert is named as unsupported, a missing field is named with what it should hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.incidents.intake import IntakeError, parse
from tests.agent.daemon_harness import alert_payload, now_iso

LEGACY = {"title": "[Alerting] checkout errors", "ruleId": 7, "ruleName": "checkout errors",
          "ruleUrl": "http://grafana/d/abc", "state": "alerting", "message": "5xx above 5%",
          "evalMatches": [{"value": 0.37, "metric": "errors", "tags": {"service": "checkout"}}]}


def _refusal(body: Any) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        parse(json.dumps(body).encode(), 1 << 16)
    return caught.value


def test_a_legacy_grafana_alert_is_named_as_not_supported() -> None:
    error = _refusal(LEGACY)
    assert error.status == 422
    assert "legacy Grafana alert" in str(error) and "not supported" in str(error)
    assert "Grafana 8+" in str(error) and "version: Field required" not in str(error)


def test_an_alert_without_labels_says_which_alert_and_what_labels_are_for() -> None:
    body = alert_payload(starts_at=now_iso())
    del body["alerts"][0]["labels"]
    message = str(_refusal(body))
    assert "alerts.0.labels is missing" in message and "alertname" in message
    assert "Field required" not in message


def test_several_problems_are_all_named() -> None:
    body = alert_payload(starts_at=now_iso())
    body["version"] = "3"
    del body["alerts"][0]["startsAt"]
    message = str(_refusal(body))
    assert "version: Input should be '4' or '1'" in message
    assert "alerts.0.startsAt is missing: when the alert began, with a timezone" in message
