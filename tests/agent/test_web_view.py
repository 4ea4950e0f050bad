"""The web incident view (issue 25, item 3) in a real browser: Debian's chromium driven by
Playwright, against `hemostat run` with the test apiserver vouching for the engineer's token.

Sign-in goes the way a person does it: `hemostat ui --server URL --no-browser` prints the
one-time link, the browser opens it. Set HEMOSTAT_WEB_SCREENSHOT=docs/img/web-incident.png to
refresh the documentation's screenshot from the approval test.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.daemon_harness import DaemonProcess
from tests.agent.read_world import EVIL, ReadWorld, follower_daemon, serve_world
from tests.services.browser import chromium


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ReadWorld]:
    yield from serve_world(tmp_path)


@pytest.fixture
def daemon(world: ReadWorld) -> Iterator[DaemonProcess]:
    yield from follower_daemon(world)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def sign_in_link(world: ReadWorld, daemon: DaemonProcess, who: str = "alice") -> str:
    done = world.hemostat("ui", "--server", daemon.url, "--no-browser", kubeconfig=world.person(who, "sre"))
    assert done.returncode == 0, done.stderr
    assert f"signed in as {who}" in done.stdout
    [link] = [line for line in done.stdout.splitlines() if line.startswith(daemon.url)]
    return link


def test_an_engineer_signs_in_opens_the_incident_and_approves_its_proposal(
        world: ReadWorld, daemon: DaemonProcess, browser: Any, tmp_path: Path) -> None:
    dialogs: list[str] = []
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(sign_in_link(world, daemon))

    assert page.url == f"{daemon.url}/ui/"  # the link was traded for a cookie and left behind
    [cookie] = context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    rows = page.locator("table.incidents tbody tr")
    assert rows.count() == 1  # billing's namespace is not alice's to read
    assert EVIL in rows.first.inner_text()  # the malicious title shown as text, not run

    page.click("text=inc-read0001")
    page.wait_for_url(f"{daemon.url}/ui/incidents/inc-read0001")
    assert "5xx ratio 18% (baseline 0.4%)" in page.locator("table.evidence").inner_text()
    proposal = page.locator("section#p-read0001")
    assert "errors began 40 s after deploy abc123" in proposal.locator("ul.for").inner_text()
    assert "no pod restarts" in proposal.locator("ul.against").inner_text()
    assert "needs 1 approval from sre" in proposal.locator(".verdict").inner_text()
    assert proposal.locator("[data-state]").inner_text() == "proposed"
    assert EVIL in page.locator("table.timeline").inner_text()  # the alert's label, escaped

    proposal.locator("button[value=approve]").click()
    page.wait_for_selector("#flash.ok")
    assert "p-read0001 slow-marker checkout: approved by alice (kubernetes) (1/1); now approved" \
        in page.inner_text("#flash")
    page.wait_for_selector("section#p-read0001 [data-state=approved]")  # the live view redrew it
    assert page.locator("section#p-read0001 form.decide").count() == 0  # nothing left to decide

    ledger = world.ledger()
    record = ledger.proposal(world.proposal_id)
    ledger.close()
    assert record.state == "approved"
    assert [(a.identity.source, a.identity.name) for a in record.approvals] == [("kubernetes", "alice")]
    assert dialogs == [] and page.locator("img[src=x]").count() == 0  # no injected markup ran
    page.screenshot(path=os.environ.get("HEMOSTAT_WEB_SCREENSHOT") or str(tmp_path / "web.png"), full_page=True)
    context.close()


def test_the_sign_in_link_works_once_and_pages_need_a_session(
        world: ReadWorld, daemon: DaemonProcess, browser: Any) -> None:
    link = sign_in_link(world, daemon)
    first = browser.new_context()
    first.new_page().goto(link)
    second = browser.new_context().new_page()
    answer = second.goto(link)
    assert answer.status == 401 and "used already" in second.inner_text("main")
    assert second.goto(f"{daemon.url}/ui/incidents/inc-read0001").status == 401
    assert "checkout" not in second.inner_text("main")
    first.close()


def test_a_post_without_the_page_s_csrf_token_or_from_another_origin_is_refused(
        world: ReadWorld, daemon: DaemonProcess, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(sign_in_link(world, daemon))
    page.goto(f"{daemon.url}/ui/incidents/inc-read0001")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    [cookie] = context.cookies()
    jar = f"{cookie['name']}={cookie['value']}"
    body = {"id": world.proposal_id, "reason": ""}
    assert _post(daemon, "/ui/approve", body, {"Cookie": jar}) == 403
    assert _post(daemon, "/ui/approve", body, {"Cookie": jar, "X-CSRF-Token": "guess"}) == 403
    assert _post(daemon, "/ui/approve", body, {"Cookie": jar, "X-CSRF-Token": token,
                                               "Origin": "http://evil.example"}) == 403
    assert _post(daemon, "/ui/approve", body, {"X-CSRF-Token": token}) == 401  # no session cookie
    ledger = world.ledger()
    assert ledger.proposal(world.proposal_id).state == "proposed"
    ledger.close()
    assert _post(daemon, "/ui/reject", {**body, "reason": "not this one"}, {"Cookie": jar, "X-CSRF-Token": token,
                                                                            "Origin": daemon.url}) == 200
    context.close()


def _post(daemon: DaemonProcess, path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    request = urllib.request.Request(daemon.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
