"""README stays true: its example hemostat.yaml loads, and every command it lists exists."""

from __future__ import annotations

import re
from pathlib import Path

from agent.cli.main import cli
from agent.model.config import load_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_example_config_in_the_readme_loads(tmp_path: Path) -> None:
    block = README.split("`hemostat.yaml` (validated at start-up")[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "hemostat.yaml"
    path.write_text(block)
    config = load_config(path)
    assert config.target("checkout").dependencies[0].name == "stripe"


def test_every_command_in_the_readme_exists() -> None:
    named = set(re.findall(r"`hemostat ([a-z]+)", README))
    assert {"diagnose", "approve", "drill", "run"} <= named
    assert named <= set(cli.commands), named - set(cli.commands)
