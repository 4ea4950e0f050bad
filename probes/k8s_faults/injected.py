"""Faults injected by hand or by a chaos tool (pure): `tc ... netem delay|loss` run in the
workload's pods (pod network delay) or in a host-network pod on one of its nodes (node network
delay, packet loss), a CPU stressor in its pods (`stress-ng --cpu`, Chaos Mesh StressChaos) —
what a cluster shows when someone made it slow on purpose. Evidence: the command, the object.
"""

from __future__ import annotations

import re
from typing import Any

from probes.k8s_faults.fault import Fault
from probes.k8s_faults.view import ClusterView, Workload, matches, name

JSON = dict[str, Any]
NETEM = re.compile(r"\bnetem\b.*?\b(delay|loss|corrupt|duplicate)\b", re.S)
STRESS = re.compile(r"stress(-ng)?\b.*?(--cpu\b|-c\s+\d)", re.S)


def _commands(pod_spec: JSON) -> list[tuple[str, str]]:
    """(container, its image, command and args as one text) of every container and init container."""
    return [
        (
            str(c.get("name")),
            " ".join(
                [str(c.get("image") or ""), *map(str, c.get("command") or []), *map(str, c.get("args") or [])]
            ),
        )
        for c in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    ]


def _node(pod: JSON) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def injected_network(w: Workload, view: ClusterView) -> list[Fault]:
    for container, text in _commands(w.template):
        if m := NETEM.search(text):
            return [
                Fault(
                    "pod_network_delay",
                    w.ref,
                    f"{w.ref}'s container {container} injects network {m[1]} "
                    "into its own pods (tc netem): remove it",
                    (text[:200],),
                    template_path="containers",
                    rank=3,
                )
            ]
    mine = {_node(p) for p in w.pods} - {""}
    for pod in [*view.items("pods"), *view.items("system_pods")]:
        spec = pod.get("spec") or {}
        if not spec.get("hostNetwork") or _node(pod) not in mine:
            continue
        for container, text in _commands(spec):
            if m := NETEM.search(text):
                cause = "node_network_delay" if m[1] == "delay" else "node_packet_loss"
                return [
                    Fault(
                        cause,
                        f"node/{_node(pod)}",
                        f"host-network pod {name(pod)} injects network {m[1]} "
                        f"on node {_node(pod)} (tc netem), where {w.ref} runs: remove it",
                        (f"pod/{name(pod)} container {container}: {text[:200]}",),
                        rank=4,
                    )
                ]
    return []


def injected_cpu(w: Workload, view: ClusterView) -> list[Fault]:
    for container, text in _commands(w.template):
        if STRESS.search(text):
            return [
                Fault(
                    "pod_cpu_overload",
                    w.ref,
                    f"{w.ref}'s container {container} burns CPU on purpose (a CPU stressor): remove it",
                    (text[:200],),
                    template_path="containers",
                    rank=3,
                )
            ]
    for chaos in view.items("chaos"):
        spec = chaos.get("spec") or {}
        sel = spec.get("selector") or {}
        if chaos.get("kind") != "StressChaos" or not (spec.get("stressors") or {}).get("cpu"):
            continue
        spaces = sel.get("namespaces") or [(chaos.get("metadata") or {}).get("namespace")]
        if w.namespace in spaces and any(
            matches(sel.get("labelSelectors") or {}, lab) for lab in w.pod_labels()
        ):
            return [
                Fault(
                    "pod_cpu_overload",
                    w.ref,
                    f"{w.ref}'s pods are under StressChaos {name(chaos)} "
                    f"(cpu {spec['stressors']['cpu']}): remove it",
                    (f"StressChaos {name(chaos)}",),
                    rank=3,
                )
            ]
    return []


RULES = (injected_network, injected_cpu)
