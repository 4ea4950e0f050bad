"""The example plugin package (examples/hemostat-greeter, docs/plugins.md), installed as a
real distribution and used by the real `hemostat` command: its settings checked by its own
model, its tree fragment reaching its action, its RBAC printed as chart values, and its own
test template passing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.loopback import LoopbackServer
from tests.plugins.install import install_plugin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hemostat-greeter"
HEMOSTAT = str(Path(sys.executable).parent / "hemostat")
ENTRY_POINTS = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The example installed: its entry points (as pyproject.toml declares them) in a dist-info."""
    points = "".join(f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
                     for group, entries in ENTRY_POINTS.items())
    site = install_plugin(tmp_path / "site", None, points, name="greeter")
    return {**os.environ, "PYTHONPATH": f"{site}:{EXAMPLE}:{ROOT}"}


def config(tmp_path: Path, greeting: dict[str, Any]) -> Path:
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump({"store": {"path": "ledger.db"}, "targets": [
        {"name": "greeter", "probes": ["greeting"], "plugins": {"greeting": greeting}}]}))
    return path


def hemostat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEMOSTAT, *args], env={**env, "NO_COLOR": "1"}, capture_output=True, text=True,
                          timeout=60)


def test_a_plugin_finding_reaches_the_plugin_action_through_its_tree_fragment(
        tmp_path: Path, env: dict[str, str], loopback: LoopbackServer) -> None:
    loopback.route("/greeting", body="grumpy: go away")
    done = hemostat(env, "--config", str(config(tmp_path, {"url": loopback.url})), "diagnose", "greeter",
                    "--json", "--no-ledger")
    assert done.returncode == 3, done.stderr  # diagnose exits 3 when it finds an incident
    doc = json.loads(done.stdout)
    assert [f["kind"] for f in doc["findings"]] == ["greeter_grumpy"]
    [proposal] = doc["proposals"]
    assert proposal["action"] == "cheer-up" and proposal["path"][0]["branch"] == "the greeter app is grumpy"


@pytest.mark.parametrize(("greeting", "message"), [
    ({"url": "ftp://greeter"}, "targets.0.plugins.greeting.url: String should match pattern"),
    ({"url": "http://greeter", "timeout_s": 99}, "targets.0.plugins.greeting.timeout_s: Input should be less "
                                                 "than or equal to 30"),
    ({"url": "http://greeter", "hello": 1}, "targets.0.plugins.greeting.hello: Extra inputs are not permitted"),
])
def test_plugin_settings_are_checked_by_the_plugin_s_model(
        tmp_path: Path, env: dict[str, str], greeting: dict[str, Any], message: str) -> None:
    done = hemostat(env, "--config", str(config(tmp_path, greeting)), "diagnose", "greeter", "--no-ledger")
    assert done.returncode == 2 and message in done.stderr


def test_settings_for_a_plugin_that_is_not_installed_name_the_ones_that_are(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "hemostat.yaml"
    path.write_text(yaml.safe_dump({"targets": [{"name": "greeter", "plugins": {"hello": {"a": 1}}}]}))
    done = hemostat(env, "--config", str(path), "diagnose", "greeter", "--no-ledger")
    assert done.returncode == 2
    assert "targets.0.plugins.hello: no installed probe or action named 'hello' takes settings " \
           "(plugins with settings: greeting)" in done.stderr


def test_the_rbac_a_plugin_declares_comes_out_as_chart_values(env: dict[str, str]) -> None:
    done = hemostat(env, "plugins", "--rbac")
    assert done.returncode == 0, done.stderr
    values = yaml.safe_load(done.stdout)
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    assert values == {"rbac": {"pluginRules": [rule, rule]}}  # the probe's and the action's
    assert "# cheer-up, greeting" in done.stdout


def test_the_example_s_own_test_template_passes(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                          env=env, capture_output=True, text=True, timeout=300, cwd=EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
