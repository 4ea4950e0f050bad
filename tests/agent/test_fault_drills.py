"""The 40 fault drills (drills/fault-*.yaml) are what their builder makes, each passes, and the
`root_cause` expectation fails a drill whose diagnosis heads with another cause or object."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from tests.probes.cluster_cases import CASES
from tests.probes.fault_drills import path_name, scenario

DRILLS = Path(__file__).resolve().parents[2] / "drills"


def test_every_root_cause_has_its_drill_and_it_is_the_builders() -> None:
    for cause in CASES:
        path = DRILLS / path_name(cause)
        assert yaml.safe_load(path.read_text()) == json.loads(json.dumps(scenario(cause))), path.name


def test_the_fault_drills_pass() -> None:
    result = CliRunner().invoke(cli, ["drill", *(str(DRILLS / path_name(c)) for c in sorted(CASES))])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{len(CASES)} passed, 0 failed")


def test_a_drill_expecting_another_object_fails(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(scenario("taint_not_tolerated")))
    doc["expect"]["root_cause"] = "taint_not_tolerated node/worker-1"
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(cli, ["drill", str(path)])
    assert result.exit_code != 0
    assert "root_cause: expected taint_not_tolerated node/worker-1, got taint_not_tolerated node/worker-2" in result.output
