"""The Prometheus fixture itself: it scrapes a loopback app, evaluates rules on a 1 s clock, and
serves backfilled history to `offset` queries, so the probe tests can rely on all three."""

from __future__ import annotations

import time

from tests.loopback import LoopbackServer
from tests.services.prometheus import StartPrometheus


def test_scrapes_a_loopback_app_and_fires_a_rule(prometheus: StartPrometheus,
                                                 loopback: LoopbackServer) -> None:
    loopback.route("/metrics", body="# TYPE demo_up gauge\ndemo_up 7\n")
    address = loopback.url.removeprefix("http://")
    rules = {"groups": [{"name": "t", "rules": [
        {"alert": "DemoHigh", "expr": "demo_up > 5", "for": "0s", "labels": {"severity": "page"}}]}]}
    server = prometheus(targets=[address], rules=rules)

    up = server.wait_for('demo_up{job="app"}')
    assert up[0]["metric"]["instance"] == address and up[0]["value"][1] == "7"
    firing = server.wait_for('ALERTS{alertname="DemoHigh",alertstate="firing"}')
    assert firing[0]["metric"]["severity"] == "page"


def test_backfilled_history_answers_offset_queries(prometheus: StartPrometheus) -> None:
    day_ago = int(time.time()) - 86_400
    history = "".join(f"demo_requests_total{{code=\"200\"}} {100 * i} {day_ago - 600 + 60 * i}\n"
                      for i in range(11))
    server = prometheus(backfill="# TYPE demo_requests_total counter\n" + history + "# EOF\n")

    last_day = server.query("demo_requests_total offset 1d")
    assert [s["value"][1] for s in last_day] == ["1000"]
    assert server.query("demo_requests_total") == []  # nothing scraped now: the history is all
