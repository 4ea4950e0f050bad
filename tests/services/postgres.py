"""Pytest plugin: a real PostgreSQL server for the tests that need one, and a fresh database each.

`pg_server` (session) is, in order of preference:
1. the server at `HEMOSTAT_TEST_PG_DSN` (a superuser DSN; `stop()`/`start()` skip the test);
2. a throwaway cluster made with the local binaries (`pg_config --bindir`, else
   /usr/lib/postgresql/*/bin): initdb + pg_ctl in a temp dir, TCP on a free loopback port with
   scram-sha-256, no Unix socket, `max_connections=40` so saturation tests are cheap. initdb
   refuses root, so as root the cluster runs as the system user `hemostat-test` (made if missing);
3. a testcontainers `PostgresContainer` if a Docker engine answers;
4. otherwise the test is skipped, or fails when HEMOSTAT_REQUIRE_SERVICES=1.

`pg_server` offers `.admin_dsn`, `.dsn(user=, password=, dbname=)`, `.host`, `.port`, `.stop()`,
`.start()` and `.create_role(name, password, *grants)`. `pg_db` (function) creates a database for
one test, returns its superuser DSN, and drops it (forcing out stray sessions) afterwards.
`pg_sessions` (function) opens background sessions (a query running in a thread, an idle
transaction, idle connections) and terminates and joins them all when the test ends.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.services import free_port, missing

MAX_CONNECTIONS = 40
RUN_AS = "hemostat-test"


@dataclass
class PgServer:
    """A PostgreSQL server reached over TCP as `superuser`; `stop`/`start` keep host and port."""

    host: str
    port: int
    superuser: str
    password: str
    _stop: Callable[[], None] | None = None
    _start: Callable[[], None] | None = None
    _roles: set[str] = field(default_factory=set)

    @property
    def admin_dsn(self) -> str:
        return self.dsn()

    def dsn(self, user: str | None = None, password: str | None = None, dbname: str = "postgres") -> str:
        """A key=value DSN; `user` defaults to the superuser (with its password)."""
        pw = password if password is not None else (self.password if user is None else "")
        return make_conninfo(host=self.host, port=self.port, user=user or self.superuser,
                             password=pw, dbname=dbname, connect_timeout=5)

    def stop(self) -> None:
        if self._stop is None:
            pytest.skip("this PostgreSQL server cannot be stopped by the tests")
        self._stop()

    def start(self) -> None:
        if self._start is not None:
            self._start()

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(dbname=dbname), autocommit=True)

    def create_role(self, name: str, password: str, *grants: str, dbname: str = "postgres") -> str:
        """Create (or reset) a LOGIN role, then `GRANT <g> TO name` for each grant; returns its DSN."""
        with self.connect(dbname) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
            for grant in grants:
                conn.execute(sql.SQL("GRANT " + grant + " TO {}").format(sql.Identifier(name)))
        self._roles.add(name)
        return self.dsn(user=name, password=password, dbname=dbname)


@dataclass
class LocalCluster:
    """initdb + pg_ctl in a temp dir, run as `user` (never root)."""

    bindir: Path
    user: str | None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hemostat-pg-")))
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: f"pw-{secrets.token_hex(8)}")

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60,
                              cwd=self.root)

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user:
            os.chmod(self.root, 0o700)
            shutil.chown(self.root, self.user, self.user)
            shutil.chown(pwfile, self.user, self.user)
        done = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--pwfile", str(pwfile), "--auth-host=scram-sha-256",
                         "--auth-local=scram-sha-256", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")

    def start(self) -> None:
        if self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status").returncode == 0:
            return
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   f"-c max_connections={MAX_CONNECTIONS} -c fsync=off -c full_page_writes=off")
        done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                         str(self.root / "server.log"), "-o", options, "-w", "-t", "30", "start")
        if done.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    candidates = []
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _unprivileged_user() -> str | None:
    """None when not root; else `hemostat-test`, created as a system user if missing."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        RUN_AS], check=True, capture_output=True)
    return RUN_AS


def _from_env(dsn: str) -> PgServer:
    parts = conninfo_to_dict(dsn)
    return PgServer(host=str(parts.get("host", "127.0.0.1")), port=int(str(parts.get("port") or 5432)),
                    superuser=str(parts.get("user", "postgres")), password=str(parts.get("password", "")))


def _local() -> Iterator[PgServer] | None:
    bindir = _bindir()
    if bindir is None:
        return None
    cluster = LocalCluster(bindir=bindir, user=_unprivileged_user())
    cluster.init()
    cluster.start()

    def serve() -> Iterator[PgServer]:
        try:
            yield PgServer("127.0.0.1", cluster.port, "postgres", cluster.password,
                           _stop=cluster.stop, _start=cluster.start)
        finally:
            cluster.destroy()
    return serve()


def _docker() -> Iterator[PgServer] | None:
    try:
        from testcontainers.postgres import PostgresContainer
        container = PostgresContainer("postgres:15-alpine", password=secrets.token_hex(8))
        container.with_command(f"postgres -c max_connections={MAX_CONNECTIONS}")
        container.start()
    except Exception:  # no engine, no image, no permission: this option is simply unavailable
        return None

    def serve() -> Iterator[PgServer]:
        try:
            yield PgServer(container.get_container_host_ip(), int(container.get_exposed_port(5432)),
                           container.username, container.password)
        finally:
            container.stop()
    return serve()


def _missing(reason: str) -> None:
    missing(reason, "set HEMOSTAT_TEST_PG_DSN, or install PostgreSQL: apt-get install -y postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A running PostgreSQL server for the whole session (see the module docstring)."""
    dsn = os.environ.get("HEMOSTAT_TEST_PG_DSN")
    if dsn:
        yield _from_env(dsn)
        return
    served = _local() or _docker()
    if served is None:
        _missing("no PostgreSQL: no HEMOSTAT_TEST_PG_DSN, no local binaries, no Docker engine")
    assert served is not None
    yield from served


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[str]:
    """A fresh database for this test; returns its superuser DSN."""
    pg_server.start()  # a previous test may have stopped it
    name = f"t_{secrets.token_hex(6)}"
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.dsn(dbname=name)
    pg_server.start()
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Sessions:
    """Background sessions for one test; `close()` terminates them and joins their threads."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.conns: list[psycopg.Connection[Any]] = []
        self.threads: list[threading.Thread] = []
        self.errors: dict[int, psycopg.Error] = {}

    def connect(self, dsn: str, autocommit: bool = True, app: str = "test") -> psycopg.Connection[Any]:
        conn = psycopg.connect(dsn, autocommit=autocommit, application_name=app)
        self.conns.append(conn)
        return conn

    def run(self, dsn: str, query: str, app: str = "test") -> int:
        """Start `query` in a thread on a new session; returns its pid at once."""
        conn = self.connect(dsn, app=app)
        pid = conn.info.backend_pid

        def work() -> None:
            try:
                conn.execute(query)
            except psycopg.Error as e:  # cancelled or terminated: what the tests expect
                self.errors[pid] = e

        thread = threading.Thread(target=work, name=f"pg-session-{pid}", daemon=True)
        thread.start()
        self.threads.append(thread)
        return pid

    def idle_in_transaction(self, dsn: str, *queries: str, app: str = "test") -> int:
        """Run `queries` in a transaction left open; returns the session's pid."""
        conn = self.connect(dsn, autocommit=False, app=app)
        for query in queries:
            conn.execute(query)
        return conn.info.backend_pid

    def fill(self, dsn: str, count: int) -> list[int]:
        return [self.connect(dsn).info.backend_pid for _ in range(count)]

    def state(self, pid: int) -> dict[str, Any] | None:
        """pg_stat_activity's row for `pid` as the superuser sees it, with ages in seconds."""
        with self.server.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT state, wait_event_type AS wait, backend_start, "
                        "extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_s, "
                        "extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_s "
                        "FROM pg_stat_activity WHERE pid = %s", (pid,))
            return cur.fetchone()

    def alive(self, pid: int) -> bool:
        return self.state(pid) is not None

    def wait_until(self, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s:g}s")
            time.sleep(0.05)

    def older_than(self, pid: int, seconds: float, age: str = "query_s") -> None:
        """Wait until `pid`'s query (or state) is older than `seconds`."""
        self.wait_until(lambda: ((self.state(pid) or {}).get(age) or 0) > seconds)

    def close(self) -> None:
        pids = [c.info.backend_pid for c in self.conns if not c.closed]
        if pids:
            self.server.start()
            with self.server.connect() as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE pid = ANY(%s)", (pids,))
        for thread in self.threads:
            thread.join(timeout=10)
        for conn in self.conns:
            conn.close()


@pytest.fixture
def pg_sessions(pg_server: PgServer) -> Iterator[Sessions]:
    """Background sessions, all terminated and joined when the test ends."""
    sessions = Sessions(pg_server)
    yield sessions
    sessions.close()
