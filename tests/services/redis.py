"""Pytest plugin: a real `redis-server` on a free loopback port, with a password, no persistence.

`redis_server` (session) is the running server: `.url`, `.host`, `.port`, `.password`, and
`.stop()` / `.start()` so a test can take Redis down and bring it back on the same port.
`redis_url` (function) is its URL with the password in it, flushed before each test.

A missing binary skips the tests that need it, unless HEMOSTAT_REQUIRE_SERVICES=1 (CI), where
it fails the run instead: a suite that silently skips its Redis tests proves nothing.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.services import free_port, missing, terminate


@dataclass
class RedisServer:
    """One `redis-server` process; `stop()` and `start()` keep its port and password."""

    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: f"pw-{secrets.token_hex(8)}")
    host: str = "127.0.0.1"
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, password=self.password,
                           socket_timeout=2)

    def start(self) -> RedisServer:
        if self.running:
            return self
        args = [self.binary, "--port", str(self.port), "--bind", self.host,
                "--requirepass", self.password, "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        terminate(self._proc, timeout_s=5)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def _wait_ready(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"redis-server exited at start: {err.strip()}")
            try:
                with self.client() as probe:
                    probe.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server not ready on port {self.port} after {timeout_s:g}s")


def _missing(reason: str) -> None:
    missing(reason, "install it: apt-get install -y redis-server")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A password-protected `redis-server` on loopback for the whole session."""
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed")
    assert binary is not None
    server = RedisServer(binary=binary, workdir=tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL (password included), running and empty for this test."""
    redis_server.start()  # a previous test may have stopped it
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
