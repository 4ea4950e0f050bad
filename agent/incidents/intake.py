"""Alert webhook intake: validate, authenticate, map alerts to targets.

Two payloads share one shape: Alertmanager's webhook (`version: "4"`) and Grafana unified
alerting's (`version: "1"`, which adds fields we ignore). Timestamps must carry a timezone: a
naive one is refused with the field named, never guessed. Each alert is identified by its
fingerprint (Alertmanager's, or a hash of its labels when a sender gives none); a delivery of
the same fingerprint, status and `startsAt` is a duplicate, whatever the body bytes say.

Pure parsing and routing; the daemon's HTTP handler calls these and records the result.
Every rejection is an `IntakeError` carrying the HTTP status to answer with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.model import HemostatError, TargetSpec
from agent.model.config import Config

MAX_DEPTH = 16  # an Alertmanager v4 payload nests 4 levels; more is not a real alert


class IntakeError(HemostatError):
    code = "intake"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: AwareDatetime
    endsAt: AwareDatetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""

    @model_validator(mode="after")
    def _fingerprinted(self) -> Alert:
        if not self.fingerprint:  # stable across deliveries: the labels are the alert's identity
            labels = json.dumps(self.labels, sort_keys=True).encode()
            self.fingerprint = hashlib.sha256(labels).hexdigest()[:16]
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a delivery new: fingerprint, status and when this firing began."""
        return self.fingerprint, self.status, self.startsAt.isoformat()


class Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal["4", "1"]  # "1": Grafana unified alerting, same shape plus extras
    groupKey: str = Field("", max_length=4096)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0
    alerts: list[Alert] = Field(min_length=1, max_length=1000)

    @property
    def source(self) -> str:
        return "grafana" if self.version == "1" else "alertmanager"

    @model_validator(mode="after")
    def _keyed(self) -> Webhook:
        if not self.groupKey:  # Grafana may leave it out; the group labels name the group
            self.groupKey = json.dumps(self.groupLabels, sort_keys=True)
        return self


def authenticate(header: str | None, token: str | None) -> None:
    """Bearer token check in constant time; no token configured means no check."""
    if token is None:
        return
    scheme, _, given = (header or "").partition(" ")
    given = given.strip()
    # An empty token (an empty Secret file) must not match an empty credential.
    well_formed = bool(token) and bool(given) and scheme.lower() == "bearer"
    if not (well_formed and hmac.compare_digest(given.encode(), token.encode())):
        raise IntakeError(401, "missing or wrong bearer token")


def parse(body: bytes, limit: int) -> Webhook:
    if len(body) > limit:
        raise IntakeError(413, f"payload of {len(body)} bytes is over the {limit}-byte limit")
    data = _load(body)
    if isinstance(data, dict) and "version" not in data and LEGACY_GRAFANA & data.keys():
        raise IntakeError(422, "a legacy Grafana alert (Grafana before 8: ruleName, evalMatches, no "
                               "version) is not supported: use a Grafana 8+ unified alerting webhook "
                               "contact point, or route the alert through Alertmanager")
    try:
        return Webhook.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(_readable(error) for error in e.errors()[:3])
        more = f" (and {e.error_count() - 3} more)" if e.error_count() > 3 else ""
        raise IntakeError(422, "not an Alertmanager (v4) or Grafana (v1) alert payload: "
                               f"{problems}{more}") from None


LEGACY_GRAFANA = frozenset({"ruleName", "ruleId", "evalMatches", "ruleUrl"})
_NEEDS = {"labels": "every alert needs its labels: alertname, and one naming the target "
                    "(intake.target_labels: service, app, ...)",
          "startsAt": "when the alert began, with a timezone", "status": "firing or resolved",
          "version": "\"4\" (Alertmanager) or \"1\" (Grafana 8+)", "alerts": "the list of alerts"}


def _readable(error: Any) -> str:
    """One validation error as `alerts.0.labels is missing: every alert needs ...` (dotted, as
    config errors name their fields)."""
    loc = [str(p) for p in error["loc"]]
    where = ".".join(loc) or "payload"
    if error["type"] == "missing":
        need = _NEEDS.get(loc[-1] if loc else "", "")
        return f"{where} is missing" + (f": {need}" if need else "")
    return f"{where}: {error['msg']}"


def _load(body: bytes) -> Any:
    too_deep = IntakeError(400, f"payload nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise IntakeError(400, f"payload is not JSON: {e}") from None
    except RecursionError:  # deeper than the parser's own stack: never a traceback
        raise too_deep from None
    if too_nested(data, MAX_DEPTH):
        raise too_deep
    return data


def too_nested(value: Any, limit: int) -> bool:
    """True if arrays and objects nest deeper than `limit`; iterative, so it cannot recurse."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def target_for(alert: Alert, config: Config) -> TargetSpec | None:
    """The configured target an alert is about: by name, else by deployment, and always in the
    alert's namespace when it carries one (`exported_namespace`, else `namespace`): an alert about
    staging's checkout is not shop's. The first label that names any target decides; two targets
    it could mean are ambiguous: unmatched (recorded for a human), never a guess."""
    labels = alert.labels
    for key in config.intake.target_labels:
        value = labels.get(key)
        if value is None:
            continue
        named = [t for t in config.targets if value in (t.name, t.deployment)]
        if not named:
            continue
        fitting = [t for t in named if _same_ns(labels, t)]
        exact = [t for t in fitting if t.name == value]
        chosen = exact if len(exact) == 1 else fitting
        return chosen[0] if len(chosen) == 1 else None
    return None


def _same_ns(labels: dict[str, str], target: TargetSpec) -> bool:
    stated = labels.get("exported_namespace") or labels.get("namespace")  # the workload's, past relabelling
    return stated is None or stated == target.namespace


def group(webhook: Webhook, config: Config) -> list[tuple[TargetSpec | None, Sequence[Alert]]]:
    """Alerts grouped by the target they map to; unmapped alerts under None (recorded, not dropped)."""
    by_target: dict[str | None, list[Alert]] = {}
    targets: dict[str | None, TargetSpec | None] = {None: None}
    for alert in webhook.alerts:
        target = target_for(alert, config)
        key = target.name if target else None
        targets[key] = target
        by_target.setdefault(key, []).append(alert)
    return [(targets[k], alerts) for k, alerts in by_target.items()]


class SeenAlerts:
    """Deliveries already recorded for alerts that match no target (those have no incident to
    remember them by): the most recent `size` keys, so a repeat is not recorded again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def news(self, alerts: Sequence[Alert]) -> list[Alert]:
        with self._lock:
            fresh = [a for a in alerts if a.key not in self._keys]
            for alert in alerts:
                self._keys[alert.key] = None
                self._keys.move_to_end(alert.key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)
        return fresh
