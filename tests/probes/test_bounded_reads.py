"""Every HTTP read (probes, notifiers, flag services) is bounded whatever the remote does, and
says when it cut.

A loopback server answers with a body that never ends, or redirects elsewhere. Each probe must
come back (no hang), say "truncated" where it cut, keep its Python heap peak (tracemalloc, this
process) far below what the server sent, and follow a redirect only within the same host.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from agent.model import PermanentError, TargetSpec
from agent.model.context import ProbeContext
from probes.app_metrics import AppMetricsProbe
from probes.http_health import HttpHealthProbe
from probes.provider_status import ProviderStatusProbe
from tests import hostile_http
from tests.hostile_http import HostileServer

MiB = 1 << 20
PATHS = ("/api/v2/status.json", "/api/v2/incidents/unresolved.json")


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    yield from hostile_http.serve()


def peak_of(coro: Any) -> tuple[Any, int]:
    """(result or raised error, peak traced heap in bytes while it ran)."""
    tracemalloc.start()
    try:
        try:
            result = asyncio.run(coro)
        except Exception as e:  # the error is the result for the refusals
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_endless_health_body_is_cut_and_the_status_still_counts(hostile: HostileServer) -> None:
    hostile.endless.add("/health")
    target = TargetSpec(name="shop", dependencies=[
        {"name": "payments", "url": hostile.url("/health"), "method": "GET", "timeout_s": 5}])
    data, peak = peak_of(HttpHealthProbe().collect(target, ProbeContext()))
    [check] = data["checks"]
    assert check["status"] == 200 and check["body_truncated"] is True
    assert peak < 4 * MiB, f"peak heap {peak / MiB:.1f} MiB"


def test_endless_metrics_page_is_cut_at_its_cap_and_says_truncated(hostile: HostileServer) -> None:
    hostile.endless.add("/metrics")
    target = TargetSpec(name="shop", metrics={"url": hostile.url("/metrics"), "scrape_interval_s": 0.01,
                                              "error_counters": ["x_total"], "max_body_bytes": MiB})
    data, peak = peak_of(AppMetricsProbe().collect(target, ProbeContext()))
    assert data["truncated"].startswith("truncated: the body went on past 1024 KiB")
    assert all(scrape["truncated"] for scrape in data["scrapes"])
    assert peak < 12 * MiB, f"peak heap {peak / MiB:.1f} MiB"
    assert hostile.sent["/metrics"] >= 2 * MiB  # the server did try to send more


def test_endless_status_page_is_a_named_gap_not_a_memory_spike(hostile: HostileServer) -> None:
    hostile.endless.update(PATHS)
    target = TargetSpec(name="shop", dependencies=[
        {"name": "stripe", "url": "http://127.0.0.1:1/health", "statuspage_url": hostile.url("/")}])
    error, peak = peak_of(ProviderStatusProbe().collect(target, ProbeContext(timeout_s=5)))
    assert isinstance(error, PermanentError) and error.code == "statuspage_too_large"
    assert "truncated" in str(error)
    assert peak < 8 * MiB, f"peak heap {peak / MiB:.1f} MiB"


def _statuspage_target(hostile: HostileServer, host: str, **extra: Any) -> TargetSpec:
    return TargetSpec(name="shop", dependencies=[
        {"name": "stripe", "url": "http://127.0.0.1:1/health",
         "statuspage_url": hostile.url("/", host), **extra}])


def test_status_page_redirect_to_another_host_is_not_followed(hostile: HostileServer) -> None:
    """The audit: provider-status followed redirects anywhere, taking the request with it."""
    for path in PATHS:
        hostile.redirects[path] = hostile.url("/elsewhere", "localhost")
    hostile.endless.add("/elsewhere")
    with pytest.raises(PermanentError) as err:
        asyncio.run(ProviderStatusProbe().collect(_statuspage_target(hostile, "127.0.0.1"),
                                                  ProbeContext(timeout_s=5)))
    assert err.value.code == "redirect_refused" and "localhost" in str(err.value)
    assert "/elsewhere" not in hostile.sent


def test_redirects_within_the_host_or_to_an_allowed_host_are_followed(hostile: HostileServer) -> None:
    hostile.endless.add("/moved")
    for path in PATHS:
        hostile.redirects[path] = "/moved"  # same host: followed (then cut)
    with pytest.raises(PermanentError) as err:
        asyncio.run(ProviderStatusProbe().collect(_statuspage_target(hostile, "127.0.0.1"),
                                                  ProbeContext(timeout_s=5)))
    assert err.value.code == "statuspage_too_large"
    for path in PATHS:
        hostile.redirects[path] = hostile.url("/moved", "localhost")
    target = _statuspage_target(hostile, "127.0.0.1", allow_redirects_to=["localhost"])
    with pytest.raises(PermanentError) as err:
        asyncio.run(ProviderStatusProbe().collect(target, ProbeContext(timeout_s=5)))
    assert err.value.code == "statuspage_too_large"


def test_a_notifier_endpoint_answering_forever_costs_a_bounded_read(hostile: HostileServer) -> None:
    from agent.incidents.notify import HttpChannel, Notifier
    from tests.agent.test_notify import update

    hostile.endless.add("/hook")

    class Url:
        def resolve(self) -> str:
            return hostile.url("/hook")

    [delivery], peak = peak_of(Notifier([HttpChannel("webhook#0", Url(), "webhook")]).deliver(update()))
    assert delivery.ok and peak < 4 * MiB, f"peak heap {peak / MiB:.1f} MiB"


def test_a_flag_service_answering_forever_is_garbage_not_a_memory_spike(hostile: HostileServer) -> None:
    from actions.flag_backends import backend_for
    from agent.model import FlagSpec
    from agent.model.context import ActionContext

    hostile.endless.add("/flag")
    spec = FlagSpec(name="new-ui", backend="webhook", url=hostile.url("/flag"))
    flag = backend_for(spec, ActionContext(target=TargetSpec(name="shop", flags=[spec])))
    error, peak = peak_of(flag.get())
    assert isinstance(error, PermanentError) and error.code == "flag_garbage", error
    assert peak < 6 * MiB, f"peak heap {peak / MiB:.1f} MiB"
