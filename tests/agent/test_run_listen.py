"""`hemostat run` will not take alerts from the network unauthenticated without being told."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from agent.cli.daemon import loopback
from tests.agent.daemon_harness import HEMOSTAT, daemon_config
from tests.loopback import LoopbackServer


def _without_token(config: Path) -> Path:
    spec = yaml.safe_load(config.read_text())
    del spec["intake"]["token"]
    config.write_text(yaml.safe_dump(spec))
    return config


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEMOSTAT, "--config", str(config), "run", *args], capture_output=True, text=True,
                          timeout=30)


def test_a_non_loopback_listen_without_a_token_is_refused(tmp_path: Path, loopback: LoopbackServer,
                                                          deploy_repo: Path) -> None:
    config = _without_token(daemon_config(tmp_path, loopback, deploy_repo))
    done = _run(config, "--listen", "0.0.0.0:0")
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0:0" in done.stderr and "--allow-unauthenticated" in done.stderr
    assert "intake.token" in done.stderr and "Traceback" not in done.stderr


def test_allow_unauthenticated_or_a_loopback_listen_starts(tmp_path: Path, loopback: LoopbackServer,
                                                           deploy_repo: Path) -> None:
    config = _without_token(daemon_config(tmp_path, loopback, deploy_repo))
    for args in (["--listen", "0.0.0.0:0", "--allow-unauthenticated"], ["--listen", "127.0.0.1:0"]):
        proc = subprocess.Popen([HEMOSTAT, "--config", str(config), "run", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=3)  # still running: it started
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize(("host", "only_here"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("[::1]", True), ("::1", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("hemostat.example.com", False)])
def test_what_counts_as_loopback(host: str, only_here: bool) -> None:
    assert loopback(host) is only_here
