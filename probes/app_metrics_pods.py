"""`app-metrics` per pod: where each ready pod behind a Service answers (its EndpointSlices), and
one error rate from the pods' own deltas.

Through a Service URL the two scrapes of a rate can land on different pods: pod A at 100 errors /
100k requests, then pod B at 9,000 / 120k reads as 44.5% errors from two healthy pods. Scraping
each pod twice and adding up each pod's own increase cannot mix them up; the sample size is the
requests all pods served in the window.
"""

from __future__ import annotations

from typing import Any

from agent.model import MetricsSpec

JSON = dict[str, Any]


def pod_urls(slices: list[JSON], spec: MetricsSpec) -> list[tuple[str, str]]:
    """(pod, metrics URL) for each ready endpoint of the slices, at most `spec.max_pods`."""
    out: list[tuple[str, str]] = []
    for piece in slices:
        port = _port(piece.get("ports") or [], spec.port)
        if port is None:
            continue
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False or not endpoint.get("addresses"):
                continue  # a pod that is not ready receives no traffic: not part of the rate
            address = endpoint["addresses"][0]
            host = f"[{address}]" if ":" in address else address
            pod = (endpoint.get("targetRef") or {}).get("name") or address
            out.append((pod, f"{spec.scheme}://{host}:{port}{spec.path}"))
    return sorted(out)[:spec.max_pods]


def _port(ports: list[JSON], wanted: int | str | None) -> int | None:
    for port in ports:
        if wanted is None or wanted in (port.get("name"), port.get("port")):
            number = port.get("port")
            return int(number) if number is not None else None
    return None


def delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return after - before if after >= before else after  # counter reset: the pod restarted


def _add(total: float | None, value: float | None) -> float | None:
    return value if total is None else total + (value or 0.0)


def combined(pods: list[JSON]) -> tuple[JSON, float | None] | None:
    """The pods' deltas added up, as the single-URL rate (plus `pods` and `pods_failed`), and
    the lifetime ratio at the first scrapes as a baseline; None when no pod was scraped twice."""
    from datetime import datetime

    errors = requests = first_errors = first_requests = None
    seconds, counted = 0.0, 0
    for pod in pods:
        first, second = pod["scrapes"]
        if "error" in first or "error" in second:
            continue
        counted += 1
        errors = _add(errors, delta(first["errors"], second["errors"]))
        requests = _add(requests, delta(first["requests"], second["requests"]))
        first_errors = _add(first_errors, first["errors"])
        first_requests = _add(first_requests, first["requests"])
        seconds = max(seconds, (datetime.fromisoformat(second["at"])
                                - datetime.fromisoformat(first["at"])).total_seconds())
    if not counted:
        return None
    seconds = max(seconds, 1e-3)
    rate = {"errors": errors, "requests": requests,
            "ratio": errors / requests if errors is not None and requests else None,
            "per_minute": errors * 60 / seconds if errors is not None else None, "seconds": seconds,
            "pods": counted, "pods_failed": len(pods) - counted}
    baseline = first_errors / first_requests if first_errors is not None and first_requests else None
    return rate, baseline
