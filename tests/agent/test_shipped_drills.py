"""The scenarios shipped in drills/ all pass: the four recorded from real runs, and the corpus
built from raw API answers (tests/corpus_*.py) covering each incident type of the playbook, red
herrings, false alarms, several causes at once, partial data, quantities and feature flags."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from agent.cli.main import cli
from tests.corpus_edges import CLASSES

DRILLS_DIR = Path(__file__).resolve().parents[2] / "drills"
DRILLS = sorted(DRILLS_DIR.glob("*.yaml"))


def test_every_shipped_drill_passes() -> None:
    assert len(DRILLS) >= 30, [d.name for d in DRILLS]
    result = CliRunner().invoke(cli, ["drill", *map(str, DRILLS)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{len(DRILLS)} passed, 0 failed")


def test_shipped_drills_cover_the_four_incident_types() -> None:
    result = CliRunner().invoke(cli, ["drill", "--json", *map(str, DRILLS)])
    names = " ".join(r["name"] for r in json.loads(result.output.rsplit("\n", 2)[0]))
    for kind in ("deployment gone wrong", "database issues", "third party outage", "traffic spike"):
        assert kind in names


def test_the_corpus_files_are_what_the_builders_make() -> None:
    """Nobody hand-edits a corpus drill: each file is its builder's output, so the observations
    in it went through the probes' own shaping (re-run scripts/record_drills.py corpus)."""
    for prefix, builders in CLASSES.items():
        assert builders, prefix
        for build in builders:
            path = DRILLS_DIR / f"{prefix}-{build.__name__.replace('_', '-')}.yaml"
            assert yaml.safe_load(path.read_text()) == json.loads(json.dumps(build().scenario())), path.name
