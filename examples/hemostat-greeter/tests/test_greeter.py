"""The plugin's own tests: the probe and the action against a real greeter on loopback, and
the plugin's declarations as Hemostat reads them at start-up. A template: copy it for yours.

Run from this folder: `pip install -e '.[test]' && pytest` (Hemostat installed beside it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hemostat_greeter.action import CheerUpAction
from hemostat_greeter.probe import GreetingProbe

from agent.model import ConfigError, DecisionStep, Observation, Proposal, TargetSpec
from agent.model.context import ActionContext, ProbeContext


class Greeter(ThreadingHTTPServer):
    mood = "grumpy: leave me alone"


class Handler(BaseHTTPRequestHandler):
    server: Greeter

    def do_GET(self) -> None:
        self._answer(self.server.mood if self.path == "/greeting" else "no")

    def do_POST(self) -> None:
        if self.path == "/cheer":
            self.server.mood = "hello, friend"
        self._answer("ok")

    def _answer(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def greeter() -> Iterator[Greeter]:
    server = Greeter(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def target(url: str) -> TargetSpec:
    return TargetSpec(name="greeter", plugins={"greeting": {"url": url}})


def test_the_probe_finds_the_grumpy_greeter_and_the_action_cheers_it_up(greeter: Greeter) -> None:
    spec = target(f"http://127.0.0.1:{greeter.server_address[1]}")
    probe, action = GreetingProbe(), CheerUpAction()
    data = asyncio.run(probe.collect(spec, ProbeContext()))
    observation = Observation("greeting", "greeter", datetime.now(UTC), data)
    [finding] = probe.analyze(observation, spec, datetime.now(UTC))
    assert finding.kind == "greeter_grumpy" and "leave me alone" in finding.summary

    path = (DecisionStep("greeter-grumpy", "grumpy"),)
    proposal = Proposal("p-1", "greeter", "cheer-up", "greeter", {}, path, "grumpy", datetime.now(UTC))
    ctx = ActionContext(target=spec)
    plan = asyncio.run(action.plan(proposal, ctx))
    assert greeter.mood.startswith("grumpy")  # planning changes nothing
    assert asyncio.run(action.execute(plan, ctx)).ok
    assert asyncio.run(action.verify(plan, ctx)).ok and greeter.mood == "hello, friend"
    now = asyncio.run(probe.collect(spec, ProbeContext()))
    again = Observation("greeting", "greeter", datetime.now(UTC), now)
    assert probe.analyze(again, spec, datetime.now(UTC)) == []


def test_hemostat_checks_the_settings_with_the_plugin_s_model_and_adds_its_branch() -> None:
    from agent.diagnosis.registry import Registry
    from agent.diagnosis.wiring import build_app
    from agent.model.config import Config

    installed = Registry.discover()  # Hemostat's own actions, which the bundled tree names
    registry = Registry(actions={n: r for n, r in installed.actions.items() if n != "cheer-up"})
    registry.add_probe(GreetingProbe())
    registry.add_action(CheerUpAction())
    app = build_app(Config(targets=[target("http://greeter")]), registry)
    assert "greeter-grumpy" in [b.name for b in app.tree.branches]
    with pytest.raises(ConfigError, match=r"targets\.0\.plugins\.greeting\.url: String should match pattern"):
        build_app(Config(targets=[target("ftp://greeter")]), registry)
