"""The scenarios shipped in drills/ (recorded from real runs) all pass: the playbook still
handles the four common incident types the way it did when they were recorded."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agent.cli import cli

DRILLS = sorted((Path(__file__).resolve().parents[2] / "drills").glob("*.yaml"))


def test_every_shipped_drill_passes() -> None:
    assert len(DRILLS) >= 4, [d.name for d in DRILLS]
    result = CliRunner().invoke(cli, ["drill", *map(str, DRILLS)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{len(DRILLS)} passed, 0 failed")


def test_shipped_drills_cover_the_four_incident_types() -> None:
    result = CliRunner().invoke(cli, ["drill", "--json", *map(str, DRILLS)])
    import json

    names = " ".join(r["name"] for r in json.loads(result.output.rsplit("\n", 2)[0]))
    for kind in ("deployment gone wrong", "database issues", "third party outage", "traffic spike"):
        assert kind in names
