"""Runtime faults (pure): a container killed for memory, and liveness or readiness probes that
cannot pass — aimed at a port the container does not listen on, speaking the wrong protocol
(HTTPS to an HTTP server, HTTP to a gRPC or TCP port), or timed too tightly (a timeout or an
initial delay shorter than the app needs). Evidence: the kubelet's Unhealthy and Killing events
compared with the probe's spec and the container's declared ports.

Kubelet words (kubernetes/kubernetes): pkg/kubelet/prober/prober.go event Unhealthy
"%s probe failed: %s" ("Liveness probe failed: Get \\"http://10.244.1.5:8081/healthz\\": dial tcp
10.244.1.5:8081: connect: connection refused"); pkg/kubelet/kuberuntime/kuberuntime_container.go
Killing "Container %s failed liveness probe, will be restarted"; pkg/probe/http/http.go
"HTTP probe failed with statuscode: %d"; OOMKilled is the runtime's termination reason.
"""

from __future__ import annotations

import re
from typing import Any

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, matches, name, quantity

JSON = dict[str, Any]
REFUSED = re.compile(r"connection refused|no route to host", re.I)
PROTOCOL = re.compile(
    r"server gave HTTP response to HTTPS client|first record does not look like a TLS handshake|"
    r"malformed HTTP response|transport connection broken|http2: frame too large|"
    r"connection reset by peer|EOF$|rpc error|service unavailable|not SERVING|"
    r"Client sent an HTTP request to an HTTPS server|statuscode: 400",
    re.I | re.M,
)
TIMEOUT = re.compile(r"context deadline exceeded|Client\.Timeout|i/o timeout|timed out|timeout", re.I)


def oom(w: Workload, view: ClusterView) -> list[Fault]:
    hits = [
        (name(p), st)
        for p in w.pods
        for st in (p.get("status") or {}).get("containerStatuses") or []
        if "OOMKilled"
        in (
            ((st.get("state") or {}).get("terminated") or {}).get("reason"),
            ((st.get("lastState") or {}).get("terminated") or {}).get("reason"),
        )
    ]
    if not hits:
        return []
    limits = {
        c.get("name"): ((c.get("resources") or {}).get("limits") or {}).get("memory") for c in w.containers()
    }
    st = hits[0][1]
    return [
        Fault(
            "container_oom_killed",
            w.ref,
            f"{w.ref}'s container {st.get('name')} is OOMKilled at its memory limit "
            f"{limits.get(st.get('name')) or '(none)'}: raise the limit or fix the leak",
            tuple(
                f"{p}/{s.get('name')}: OOMKilled, {s.get('restartCount', 0)} restarts, memory limit "
                f"{limits.get(s.get('name')) or 'none'}"
                for p, s in hits[:4]
            ),
            template_path="containers.resources",
            rank=3,
        )
    ]


def _ports(c: JSON) -> dict[Any, JSON]:
    out: dict[Any, JSON] = {}
    for p in c.get("ports") or []:
        out[int(p.get("containerPort", 0))] = p
        if p.get("name"):
            out[p["name"]] = p
    return out


def _probe_port(probe: JSON) -> tuple[str, Any]:
    for kind in ("httpGet", "tcpSocket", "grpc"):
        if kind in probe:
            return kind, (probe[kind] or {}).get("port")
    return "exec", None


def _failures(w: Workload, view: ClusterView, which: str) -> list[str]:
    pods = {name(p) for p in w.pods}
    return [
        e["message"]
        for e in view.events_for(pods, w.namespace, ("Unhealthy",))
        if e["message"].startswith(f"{which} probe failed")
        or e["message"].startswith(f"{which} probe errored")
    ]


def _classify(c: JSON, probe: JSON, failed: list[str], routed: set[Any]) -> tuple[str, str] | None:
    """What is wrong with one probe: its port is none the app listens on (declared by the
    container, or where a Service sends traffic: `routed`), it speaks the wrong protocol, or it
    is timed too tightly; None when the evidence says none of these."""
    kind, port = _probe_port(probe)
    ports = _ports(c)
    known = set(ports) | routed
    text = "\n".join(failed)
    listed = (
        ", ".join(
            f"{p.get('containerPort')}{'/' + p['name'] if p.get('name') else ''}"
            for p in c.get("ports") or []
        )
        or "no ports"
    )
    elsewhere = port is not None and bool(known) and port not in known
    wrong_port = (
        "wrong_port",
        f"probes {kind} port {port}; container {c.get('name')} declares {listed}"
        + (f", Services send to {sorted(map(str, routed))}" if routed else ""),
    )
    if not failed:
        return wrong_port if elsewhere and ports else None
    declared = ports.get(port) if port is not None else None
    scheme = ((probe.get("httpGet") or {}).get("scheme") or "HTTP").upper()
    pname = str((declared or {}).get("name") or "")
    if (
        PROTOCOL.search(text)
        or (kind == "httpGet" and pname.startswith(("grpc", "tcp")))
        or (kind == "grpc" and pname.startswith("http"))
        or (scheme == "HTTPS" and pname == "http")
    ):
        return (
            "wrong_protocol",
            f"probes with {kind} {scheme if kind == 'httpGet' else ''} on port {port}"
            f"{' (' + pname + ')' if pname else ''}",
        )
    if REFUSED.search(text):
        if elsewhere or not known:
            return wrong_port
        return (
            "timing",
            f"initialDelaySeconds {probe.get('initialDelaySeconds', 0)}: probed before it listens on {port}",
        )
    if TIMEOUT.search(text):
        return (
            "timing",
            f"timeoutSeconds {probe.get('timeoutSeconds', 1)}, periodSeconds "
            f"{probe.get('periodSeconds', 10)}, failureThreshold {probe.get('failureThreshold', 3)}",
        )
    return wrong_port if elsewhere else None


def _routed(w: Workload, view: ClusterView) -> set[Any]:
    """The target ports of the Services that select the workload's pods."""
    return {
        port.get("targetPort", port.get("port"))
        for svc in view.items("services", w.namespace)
        if any(matches((svc.get("spec") or {}).get("selector"), lab) for lab in w.pod_labels())
        for port in (svc.get("spec") or {}).get("ports") or []
    }


def probes(w: Workload, view: ClusterView) -> list[Fault]:
    out = []
    routed = _routed(w, view)
    for which, field_name in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe")):
        failed = _failures(w, view, which)
        for c in w.containers():
            probe = c.get(field_name)
            if not probe:
                continue
            found = _classify(c, probe, failed, routed)
            if found is None or (which == "Readiness" and found[0] == "timing"):
                continue
            if not failed and not w.hurt() and not _restarting(w):
                continue  # a probe spec that disagrees with the ports but hurts nothing yet
            cause = f"{which.lower()}_probe_{found[0]}"
            fix = {
                "wrong_port": "point the probe at the port the app listens on",
                "wrong_protocol": "match the probe's type and scheme to what the port speaks",
                "timing": "give the probe a longer timeout / initial delay (or a startupProbe)",
            }[found[0]]
            out.append(
                Fault(
                    cause,
                    w.ref,
                    f"{w.ref}'s {which.lower()} probe fails: {found[1]}; {fix}",
                    (found[1], *dict.fromkeys(failed[:3])),
                    template_path=f"containers.{field_name}",
                    rank=(3 if which == "Liveness" else 2) - (0 if failed else 1),  # events beat spec alone
                )
            )
    return out


def _restarting(w: Workload) -> bool:
    return any(
        int(st.get("restartCount", 0)) > 0
        for p in w.pods
        for st in (p.get("status") or {}).get("containerStatuses") or []
    )


def cpu_overload(w: Workload, view: ClusterView) -> list[Fault]:
    """Usage (metrics.k8s.io) at >= 90% of the CPU limit, or a CPU stressor aimed at the pods."""
    limits = {
        c.get("name"): quantity(((c.get("resources") or {}).get("limits") or {}).get("cpu"))
        for c in w.containers()
    }
    pods = {name(p) for p in w.pods}
    hot = [
        (m["metadata"]["name"], c["name"], quantity(c["usage"].get("cpu")), limits.get(c["name"]) or 0.0)
        for m in view.items("podmetrics", w.namespace)
        if m["metadata"]["name"] in pods
        for c in m.get("containers") or []
    ]
    hot = [h for h in hot if h[3] and h[2] >= 0.9 * h[3]]
    if not hot:
        return []
    return [
        Fault(
            "pod_cpu_overload",
            w.ref,
            f"{w.ref} runs at its CPU limit ({hot[0][2]:g} of {hot[0][3]:g} cores): "
            "raise the limit, scale out, or find the hot path",
            tuple(f"{p}/{c}: {u:g} cores used of a {lim:g} limit" for p, c, u, lim in hot[:4]),
            rank=2,
        )
    ]


RULES = (oom, probes, cpu_overload)
