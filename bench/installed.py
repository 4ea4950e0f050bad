"""Hemostat as `pip install` leaves it, for the timed runs of figure 1, and its daemon.

The project's own `.venv` is a development environment: an editable install, plus the test
tools (import-linter brings rich, which httpx then imports at start-up, ~30 ms). An engineer's
`hemostat` is a regular install of the package and its runtime dependencies, byte-compiled;
`hemostat()` keeps one in `.cache/bench-venv` (built once, the package reinstalled each run).

`daemon()` runs that install's `hemostat run` on a free loopback port for the remote diagnosis
(`hemostat diagnose TARGET --server URL`), the way the chart deploys it next to the apps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".cache" / "bench-venv"


def hemostat() -> Path:
    """The `hemostat` of a regular (non-editable) install of this checkout."""
    python = VENV / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # pip compiles
    if not python.exists():
        VENV.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(VENV)], env)
        _run([str(python), "-m", "pip", "install", "--quiet", str(ROOT)], env)
    else:  # the dependencies are there; the package is this checkout as it is now
        _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT)], env)
    return VENV / "bin" / "hemostat"


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, cwd=VENV.parent, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {(done.stdout + done.stderr)[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def daemon(binary: Path, config: Path, env: dict[str, str]) -> Iterator[str]:
    """`hemostat run` with `config`; yields its URL once /readyz answers 200."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = config.parent / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([str(binary), "--config", str(config), "run", "--listen", f"127.0.0.1:{port}"],
                                stdout=out, stderr=out, env={**os.environ, **env}, cwd=config.parent)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"hemostat run exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"hemostat run not ready in 30 s: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
