"""Service routing faults (pure): a Service meant for the workload whose selector picks none of
its pods, whose targetPort is no port the pods declare, or whose protocol differs from the
container port's; and a dependency address in an env var that names a Service that does not
exist (or a port it does not serve). Evidence: the Service's spec vs the pods' labels and
ports, its EndpointSlices, and the Services that exist.
"""

from __future__ import annotations

import difflib
import re
from typing import Any
from urllib.parse import urlsplit

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, matches, name, show

JSON = dict[str, Any]
HOSTLIKE = re.compile(r"(?:^|_)(HOST|HOSTNAME|ADDR|ADDRESS|URL|URI|ENDPOINT|SERVICE|SVC|DSN)$", re.I)


def _meant_for(svc: JSON, w: Workload) -> bool:
    """A Service named for the workload, or one whose selector shares a key with its pods' labels."""
    sel = (svc.get("spec") or {}).get("selector") or {}
    if name(svc) in (w.name, f"{w.name}-svc", f"{w.name}-service"):
        return True
    lab = w.template_labels
    return (
        bool(sel)
        and any(k in lab and k not in ("pod-template-hash",) for k in sel)
        and any(lab.get(k) == v or _alike(str(lab.get(k) or ""), str(v)) for k, v in sel.items())
    )


def _alike(have: str, want: str) -> bool:
    """One label value mistyped for another: `cart` and `cart-svc` / `cart-v2` / `Cart`, `cartservice`
    and `cartservise` — but not `cart` and `cart-db`, another workload's."""
    if not have or not want:
        return False
    a, b = _plain(have), _plain(want)
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= 0.9


def _plain(value: str) -> str:
    return re.sub(r"[-_.]?(svc|service|v\d+|app|deploy|deployment|pod)$", "", value.lower()).replace("-", "")


def _endpoints(view: ClusterView, svc: JSON) -> str:
    slices = [
        s
        for s in view.items("endpointslices", (svc.get("metadata") or {}).get("namespace"))
        if ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") == name(svc)
    ]
    if not view.has("endpointslices"):
        return ""
    ready = sum(
        1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready", True)
    )
    return f"service/{name(svc)} has {ready} ready endpoint(s)"


def services(w: Workload, view: ClusterView) -> list[Fault]:
    out: list[Fault] = []
    pod_labels = w.pod_labels()
    for svc in view.items("services", w.namespace):
        spec = svc.get("spec") or {}
        sel = spec.get("selector") or {}
        if not sel or not _meant_for(svc, w):
            continue
        ends = _endpoints(view, svc)
        if not any(matches(sel, lab) for lab in pod_labels):
            if any(
                matches(sel, (p.get("metadata") or {}).get("labels")) for p in view.items("pods", w.namespace)
            ):
                continue  # it serves other pods
            differ = {k: v for k, v in sel.items() if w.template_labels.get(k) != v}
            have = {k: w.template_labels.get(k, "(unset)") for k in differ}
            out.append(
                Fault(
                    "service_selector_mismatch",
                    f"service/{name(svc)}",
                    f"Service {name(svc)} selects {show(differ)}; the pods of {w.ref} are labelled "
                    f"{show(have)}: fix the Service's selector",
                    (
                        f"selector {show(sel)}",
                        *([ends] if ends else []),
                        f"{w.ref} pod labels {show(w.template_labels)}",
                    ),
                    rank=3,
                )
            )
            continue
        out += _ports(svc, w, ends)
    return out


def _ports(svc: JSON, w: Workload, ends: str) -> list[Fault]:
    declared = [(c.get("name"), p) for c in w.containers() for p in c.get("ports") or []]
    if not declared:
        return []
    out = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        hit = [
            p
            for _, p in declared
            if p.get("containerPort") == target or (p.get("name") and p.get("name") == target)
        ]
        shown = ", ".join(
            f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}{' ' + p['name'] if p.get('name') else ''}"
            for _, p in declared
        )
        if not hit:
            out.append(
                Fault(
                    "service_port_mismatch",
                    f"service/{name(svc)}",
                    f"Service {name(svc)} sends port {port.get('port')} to targetPort {target}; the pods of "
                    f"{w.ref} listen on {shown}: fix the Service's targetPort",
                    (f"targetPort {target} vs container ports {shown}", *([ends] if ends else [])),
                    rank=3,
                )
            )
        elif (proto := port.get("protocol", "TCP")) != (have := hit[0].get("protocol", "TCP")) or _app_proto(
            port, hit[0]
        ):
            out.append(
                Fault(
                    "service_protocol_mismatch",
                    f"service/{name(svc)}",
                    f"Service {name(svc)} port {port.get('port')} speaks {proto}"
                    f"{'/' + port['appProtocol'] if port.get('appProtocol') else ''}; the container port "
                    f"{hit[0].get('containerPort')} is {have} {hit[0].get('name') or ''}:"
                    " fix the Service port's protocol",
                    (f"service port {port}", f"container port {hit[0]}"),
                    rank=3,
                )
            )
    return out


def _app_proto(port: JSON, container_port: JSON) -> bool:
    app, cname = str(port.get("appProtocol") or "").lower(), str(container_port.get("name") or "").lower()
    families = ("http", "grpc", "tcp", "udp", "https", "h2c", "kubernetes.io/h2c")
    return (
        bool(app and cname)
        and any(cname.startswith(f) for f in families)
        and not (cname.startswith(app) or app.endswith(cname.split("-")[0]))
    )


def _address(value: str) -> tuple[str, int | None] | None:
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        host, port = parts.hostname or "", parts.port
    else:
        host, _, p = text.partition(":")
        port = int(p) if p.isdigit() else None
    if (
        not host
        or not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", host)
        or host in ("localhost",)
        or re.fullmatch(r"[\d.]+", host)
    ):
        return None
    return host, port


def dependency_addresses(w: Workload, view: ClusterView) -> list[Fault]:
    if not view.has("services"):
        return []
    namespaces = {(n.get("metadata") or {}).get("namespace") for n in view.items("services")}
    for c in w.containers():
        for env in c.get("env") or []:
            value = env.get("value")
            if (
                not value
                or not HOSTLIKE.search(str(env.get("name") or ""))
                or not (addr := _address(str(value)))
            ):
                continue
            host, port = addr
            labels_ = host.split(".")
            if len(labels_) > 1 and not (
                labels_[1] in namespaces or host.endswith((".svc", ".svc.cluster.local"))
            ):
                continue  # outside the cluster
            ns = labels_[1] if len(labels_) > 1 else w.namespace
            svc = view.get("services", labels_[0], ns)
            ports = [p.get("port") for p in ((svc or {}).get("spec") or {}).get("ports") or []]
            if svc is not None and (port is None or port in ports):
                continue
            why = (
                f"no Service {labels_[0]} in namespace {ns}"
                if svc is None
                else f"Service {labels_[0]} serves ports {ports}, not {port}"
            )
            return [
                Fault(
                    "dependency_address_invalid",
                    w.ref,
                    f"{w.ref}'s {env.get('name')}={value} points nowhere: {why}; fix the address",
                    (
                        f"{c.get('name')} env {env.get('name')}={value}",
                        why,
                        f"services in {ns}: " + ", ".join(name(s) for s in view.items("services", ns)),
                    ),
                    template_path="containers.env",
                    rank=3 if w.hurt() or _errors(w, view, host) else 1,
                )
            ]
    return []


def _errors(w: Workload, view: ClusterView, host: str) -> bool:
    return any(host in line for text in view.logs_of(w.pods) for line in text.splitlines())


RULES = (services, dependency_addresses)
