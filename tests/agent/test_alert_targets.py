"""Alert -> target matching honours the alert's namespace; an alert two targets could mean is
unmatched, never guessed. Alerts as Alertmanager sends them, parsed by the intake."""

from __future__ import annotations

import json

from agent.incidents.intake import parse, target_for
from agent.model import TargetSpec
from agent.model.config import Config
from tests.agent.daemon_harness import alert_payload

CONFIG = Config(targets=[TargetSpec(name="checkout", namespace="shop", deployment="checkout"),
                         TargetSpec(name="checkout-staging", namespace="staging", deployment="checkout"),
                         TargetSpec(name="search", namespace="shop", deployment="search-api"),
                         TargetSpec(name="search-eu", namespace="shop-eu", deployment="search-api"),
                         TargetSpec(name="cart", namespace="shop", deployment="cart")])


def matched(**labels: str) -> str | None:
    payload = alert_payload(**labels)
    payload["alerts"][0]["labels"].pop("hemostat_target")  # as a plain Prometheus rule labels it
    [alert] = parse(json.dumps(payload).encode(), 1 << 20).alerts
    target = target_for(alert, CONFIG)
    return target.name if target else None


def test_a_staging_alert_is_not_the_shop_target_of_the_same_name() -> None:
    assert matched(deployment="checkout", namespace="staging") == "checkout-staging"
    assert matched(deployment="checkout", namespace="shop") == "checkout"
    assert matched(deployment="cart", namespace="staging") is None  # no cart in staging


def test_exported_namespace_is_the_workloads_past_relabelling() -> None:
    assert matched(deployment="checkout", namespace="monitoring", exported_namespace="staging") == \
        "checkout-staging"


def test_an_alert_two_targets_could_mean_is_unmatched() -> None:
    assert matched(deployment="search-api") is None  # shop or shop-eu: not a guess
    assert matched(deployment="search-api", namespace="shop-eu") == "search-eu"
    assert matched(deployment="checkout") == "checkout"  # the target of that very name
