"""The decision tree's schema: `before`, `evidence`, `cause`, `fallback` and `causality` load
from the bundled tree, and a bad tree is refused naming the file, the field and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.diagnosis.registry import Registry
from agent.model import ConfigError
from policies.tree import BUNDLED_TREE, load_tree

ACTIONS = Registry.discover().actions
BRANCH = {"name": "deploy", "title": "recent deployment", "all": ["recent_deploy"], "any": ["error_spike"],
          "propose": [{"action": "rollback"}]}


def test_the_bundled_tree_times_and_weighs_its_causes() -> None:
    tree = load_tree(BUNDLED_TREE, ACTIONS)
    by_name = {b.name: b for b in tree.branches}
    assert by_name["recent-deploy"].before == "symptom"
    assert [(e.check, e.required) for e in by_name["recent-deploy"].evidence][0] == ("change_touches_runtime", True)
    assert by_name["dependency"].evidence[0].check == "logs_name_cause"
    assert by_name["otherwise"].fallback and tree.causality.tolerance_minutes == 2


@pytest.mark.parametrize(("branch", "field", "reason"), [
    ({**BRANCH, "before": "deploy"}, "branches.0.before", "Input should be 'symptom'"),
    ({**BRANCH, "evidence": [{"check": "vibes"}]}, "branches.0.evidence.0.check", "Input should be"),
    ({**BRANCH, "evidence": [{"check": "logs_name_cause", "weight": 11}]}, "branches.0.evidence.0.weight",
     "less than or equal to 10"),
    ({**BRANCH, "cause": ["oom_killed"]}, "branches.0", "cause kinds must be among 'any' or 'all': oom_killed"),
    ({**BRANCH, "fallback": True, "before": "symptom"}, "branches.0", "a fallback branch has no cause"),
    ({**BRANCH, "evidence": [{"check": "logs_name_cause", "mandatory": True}]}, "branches.0.evidence.0.mandatory",
     "Extra inputs are not permitted"),
])
def test_a_bad_branch_names_file_field_and_reason(tmp_path: Path, branch: dict[str, Any], field: str,
                                                  reason: str) -> None:
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "branches": [branch]}))
    with pytest.raises(ConfigError) as err:
        load_tree(path, ACTIONS)
    assert (err.value.source, err.value.field) == (str(path), field)
    assert reason in err.value.reason


def test_a_bad_causality_block_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "causality": {"tolerance_minutes": -1}, "branches": [BRANCH]}))
    with pytest.raises(ConfigError, match=r"causality\.tolerance_minutes: .*greater than or equal to 0"):
        load_tree(path, ACTIONS)


def test_repeated_branch_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "branches": [BRANCH, BRANCH]}))
    with pytest.raises(ConfigError, match="branch names must be unique, repeated: deploy"):
        load_tree(path, ACTIONS)
