"""Reading through the daemon (issue 25, item 2): `incidents`, `proposals`, `show`, `status` and
`postmortem` with `--server`, as real processes against `hemostat run`, with the test apiserver
vouching for tokens (TokenReview) and answering RBAC (SubjectAccessReview)."""

from __future__ import annotations

import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.model.identity import Identity
from tests.agent.daemon_harness import DaemonProcess
from tests.agent.read_world import EVIL, HEMOSTAT, ReadWorld, follower_daemon, serve_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ReadWorld]:
    yield from serve_world(tmp_path)


@pytest.fixture
def daemon(world: ReadWorld) -> Iterator[DaemonProcess]:
    yield from follower_daemon(world)


def test_incidents_through_the_daemon_read_as_the_ledger_does_for_what_rbac_allows(
        world: ReadWorld, daemon: DaemonProcess) -> None:
    alice = world.person("alice", "sre")
    remote = world.hemostat("incidents", "--server", daemon.url, kubeconfig=alice)
    local = world.hemostat("incidents", "--target", "checkout")
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout  # the same table, from the same records
    assert "inc-read0001" in remote.stdout and "inc-read0002" not in remote.stdout  # namespace pay: no RBAC
    as_json = world.hemostat("incidents", "--json", "--server", daemon.url, kubeconfig=alice)
    assert as_json.stdout == world.hemostat("incidents", "--json", "--target", "checkout").stdout


def test_filters_apply_on_the_daemon(world: ReadWorld, daemon: DaemonProcess) -> None:
    alice = world.person("alice", "sre")
    sev1 = world.hemostat("incidents", "--severity", "SEV-1", "--server", daemon.url, kubeconfig=alice)
    assert sev1.returncode == 0 and sev1.stdout.strip() == "no incidents"  # checkout is SEV-2
    recent = world.hemostat("incidents", "--since", "1m", "--server", daemon.url, kubeconfig=alice)
    assert recent.stdout.strip() == "no incidents"  # last changed 9 minutes ago
    older = world.hemostat("incidents", "--since", "30m", "--severity", "2", "--target", "checkout",
                           "--server", daemon.url, kubeconfig=alice)
    assert "inc-read0001" in older.stdout
    bad = world.hemostat("incidents", "--since", "yesterday", "--server", daemon.url, kubeconfig=alice)
    assert bad.returncode == 2 and "since: yesterday: must be a duration such as 30m" in bad.stderr
    token = {"Authorization": "Bearer token-alice"}  # the daemon checks it too, for other clients
    request = urllib.request.Request(daemon.url + "/v1/incidents?severity=SEV-9", headers=token)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400 and b"must be SEV-1 .. SEV-4" in refused.value.read()


def test_show_status_postmortem_and_proposals_match_the_local_output(world: ReadWorld, daemon: DaemonProcess) -> None:
    alice = world.person("alice", "sre")
    for args in (("show", "inc-read0001"), ("show", world.proposal_id), ("show", "inc-read0001", "--json"),
                 ("proposals",), ("proposals", "--all", "--severity", "SEV-2"), ("postmortem", "inc-read0001")):
        remote = world.hemostat(*args, "--server", daemon.url, kubeconfig=alice)
        assert remote.returncode == 0, (args, remote.stderr)
        assert remote.stdout == world.hemostat(*args).stdout, args
    status = world.hemostat("status", "inc-read0001", "--server", daemon.url, kubeconfig=alice)
    assert status.stdout.startswith("inc-read0001 SEV-2 checkout") and "Current status:" in status.stdout
    assert EVIL in world.hemostat("show", "inc-read0001", "--server", daemon.url, kubeconfig=alice).stdout


def test_without_the_rbac_permission_the_answer_is_403_naming_it(world: ReadWorld, daemon: DaemonProcess) -> None:
    mallory = world.person("mallory", "interns")
    listed = world.hemostat("incidents", "--server", daemon.url, kubeconfig=mallory)
    assert listed.returncode == 1
    assert "answered 403: mallory may not list incidents" in listed.stderr
    assert "resources [incidents], verbs [list]" in listed.stderr
    alice = world.person("alice", "sre")
    other = world.hemostat("show", "inc-read0002", "--server", daemon.url, kubeconfig=alice)
    assert other.returncode == 1 and "may not get incidents billing" in other.stderr  # namespace pay
    missing = world.hemostat("show", "inc-nope", "--server", daemon.url, kubeconfig=alice)
    assert missing.returncode == 2 and "404" in missing.stderr


def test_a_request_without_a_token_or_with_a_forged_one_reads_nothing(world: ReadWorld, daemon: DaemonProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}):
        request = urllib.request.Request(daemon.url + "/v1/incidents/inc-read0001", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert b"checkout" not in refused.value.read()


def test_watch_prints_again_when_a_proposal_changes(world: ReadWorld, daemon: DaemonProcess) -> None:
    alice = world.person("alice", "sre")
    env = {**world.env, "KUBECONFIG": str(alice), "HEMOSTAT_CONFIG": str(world.config)}
    watcher = subprocess.Popen([HEMOSTAT, "proposals", "--server", daemon.url, "--watch", "--interval", "0.2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert watcher.stdout is not None
    out = watcher.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    try:
        _wait_for(lambda: any("p-read0001  proposed" in line for line in lines), watcher)
        ledger = world.ledger()
        ledger.approve(world.proposal_id, Identity("kubernetes", "bob", "bob", ("sre",)), datetime.now(UTC))
        ledger.close()
        _wait_for(lambda: any("p-read0001  approved" in line for line in lines), watcher)
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=10)
        reader.join(timeout=10)
        for pipe in (watcher.stdout, watcher.stderr):
            if pipe is not None:
                pipe.close()
    assert sum(line.startswith("ID ") for line in lines) == 2  # printed once, then once on the change


def _wait_for(check: object, process: subprocess.Popen[str]) -> None:
    from tests.agent.daemon_harness import wait_until

    try:
        wait_until(check, timeout_s=20)
    except AssertionError:
        process.kill()
        raise AssertionError(f"watch did not print it: {process.stderr.read() if process.stderr else ''}") \
            from None
