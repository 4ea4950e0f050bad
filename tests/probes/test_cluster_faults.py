"""Each of the 40 root causes, planted in a healthy namespace recorded as the apiserver answers
it: the diagnosis names the right object at fault and root cause first, and the healthy
namespace shows no fault at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from probes.k8s_faults import VOCABULARY, ClusterView, findings, workload_of
from tests.probes import cluster_faults, cluster_faults_more, cluster_faults_net  # noqa: F401  (register cases)
from tests.probes.cluster_cases import CASES, healthy

NOW = datetime(2026, 12, 8, 0, 30, tzinfo=UTC)


def diagnose(lists: dict) -> list:
    view = ClusterView.of({k: v for k, v in lists.items() if k != "deployments"})
    return findings(workload_of(view, lists["deployments"][0]), view, NOW)


def test_every_root_cause_of_the_vocabulary_has_a_case() -> None:
    assert sorted(CASES) == sorted(VOCABULARY)
    assert len(VOCABULARY) == 40


def test_a_healthy_namespace_has_no_fault() -> None:
    assert diagnose(healthy()) == []


@pytest.mark.parametrize("cause", sorted(CASES))
def test_the_root_cause_and_object_head_the_diagnosis(cause: str) -> None:
    obj, plant = CASES[cause]
    lists = healthy()
    plant(lists)
    found = diagnose(lists)
    assert found, f"{cause}: no finding"
    head = found[0]
    assert (head.kind, head.subject) == (cause, obj), [(f.kind, f.subject, f.summary) for f in found]
    assert head.facts["class"] == VOCABULARY[cause]
    assert head.evidence, "a finding rests on evidence"
