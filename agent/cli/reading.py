"""Reading incidents and proposals from the ledger or through the daemon, for `incidents`,
`proposals`, `show`, `status` and `postmortem`.

With `--server URL` (env HEMOSTAT_SERVER) the records come from the daemon's read API
(agent.server.read_api) as the engineer's own Kubernetes identity, as `approve --server` sends
it; without, from the ledger in hemostat.yaml. Either way they become the same ledger records,
so the output is the same. `--watch` polls and prints again whenever the output changes
(redrawing the screen on a terminal); Ctrl-C ends it.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import click

from agent.cli.base import Ctx, server_options
from agent.model import HemostatError

if TYPE_CHECKING:
    from agent.incidents.queries import Filters

F = TypeVar("F", bound=Callable[..., Any])
TIMEOUT_S = 30


def filter_options(command: F) -> F:
    """--target, --severity, --since: which incidents (proposals) to list."""
    for option in reversed((
            click.option("--target", help="only this target's"),
            click.option("--severity", metavar="SEV-N", help="only this severity or worse (SEV-2: 1 and 2)"),
            click.option("--since", metavar="AGE|TIME",
                         help="only what changed since: 30m, 2h, 7d, or an ISO-8601 time"))):
        command = option(command)
    return command


def read_options(command: F) -> F:
    """--server/--kubeconfig/--context, --watch and --interval."""
    command = click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
                           metavar="SECONDS", help="with --watch: how often to poll")(command)
    command = click.option("--watch", "-w", is_flag=True,
                           help="keep polling; print again whenever it changes (Ctrl-C ends)")(command)
    return server_options("read through the daemon's API as your Kubernetes identity")(command)


@dataclass
class Remote:
    """The daemon's read API, called with the kubeconfig's bearer token."""

    server: str
    kubeconfig: str | None
    context: str | None
    _token: str | None = None

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        from agent.cli.approval_client import check_transport, fast_bearer_token

        url = f"{check_transport(self.server)}{path}" + (f"?{urlencode(query)}" if query else "")
        for attempt in (1, 2):  # a token that expired while watching: fetch it once more
            if self._token is None:
                self._token = fast_bearer_token(self.kubeconfig, self.context)
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # scheme checked
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 1:
                    self._token = None
                    continue
                raise HemostatError(f"{self.server} answered {e.code}: {_error(e)}",
                                    code="not_found" if e.code == 404 else f"http_{e.code}") from None
            except (urllib.error.URLError, OSError) as e:
                raise HemostatError(f"cannot reach the daemon's API at {self.server}: "
                                    f"{getattr(e, 'reason', e)}", code="api_unreachable") from None
        raise AssertionError("unreachable")


def _error(e: urllib.error.HTTPError) -> str:
    raw = e.read()
    try:
        return str(json.loads(raw).get("error") or "")
    except (ValueError, AttributeError):
        return raw[:300].decode(errors="replace")


class Source:
    """Where the records come from: the daemon (`remote`) or the ledger of `obj`'s config."""

    def __init__(self, obj: Ctx, server: str | None, kubeconfig: str | None, context: str | None) -> None:
        self.obj = obj
        self.remote = Remote(server, kubeconfig, context) if server else None
        self._ledger: Any = None

    def ledger(self) -> Any:
        """The config's ledger, opened once (a --watch polls it)."""
        if self._ledger is None:
            self._ledger = self.obj.ledger()
        return self._ledger

    def incidents(self, filters: Filters) -> list[Any]:
        from agent.ledger import records_json

        if self.remote is not None:
            return [records_json.incident(d) for d in self.remote.get("/v1/incidents", filters.query())]
        return filters.incidents(self.ledger().incidents(open_only=filters.open_only))

    def proposals(self, filters: Filters, show_all: bool) -> list[Any]:
        from agent.ledger import records_json

        if self.remote is not None:
            query = {**filters.query(), **({"all": "true"} if show_all else {})}
            return [records_json.proposal(d) for d in self.remote.get("/v1/proposals", query)]
        ledger = self.ledger()
        severity = {i.id: i.severity for i in ledger.incidents()} if filters.severity else {}
        return filters.proposals(ledger.proposals(states=None if show_all else ("proposed", "approved")),
                                 severity)

    def incident(self, ref: str) -> tuple[Any, list[Any], list[Any]]:
        """(incident, its events, its proposals)."""
        from agent.ledger import records_json

        if self.remote is not None:
            doc = self.remote.get(f"/v1/incidents/{quote(ref, safe='')}")
            return (records_json.incident(doc), [records_json.event(e) for e in doc["events"]],
                    [records_json.proposal(p) for p in doc["proposals"]])
        ledger = self.ledger()
        found = ledger.incident(ref)
        return found, ledger.events(incident_id=found.id), ledger.proposals(incident_id=found.id)

    def proposal(self, ref: str) -> tuple[Any, list[Any]]:
        from agent.ledger import records_json

        if self.remote is not None:
            doc = self.remote.get(f"/v1/proposals/{quote(ref, safe='')}")
            return records_json.proposal(doc), [records_json.event(e) for e in doc["events"]]
        ledger = self.ledger()
        record = ledger.proposal(ref)
        return record, ledger.events(proposal_id=record.id)

    def status(self, ref: str) -> dict[str, Any]:
        """{"id", "headline", "text", "update"}: the status update as it would be posted now."""
        if self.remote is not None:
            return dict(self.remote.get(f"/v1/incidents/{quote(ref, safe='')}/status"))
        from agent.incidents.status import status_update
        from agent.model.context import utcnow

        ledger = self.ledger()
        found = ledger.incident(ref)
        update = status_update(found, ledger.events(incident_id=found.id), utcnow(),
                               self.obj.config.executor.status_update_minutes, self.obj.config.roles)
        return {"id": found.id, "headline": update.headline(), "text": update.text(),
                "update": update.to_json()}

    def postmortem(self, ref: str) -> str:
        if self.remote is not None:
            return str(self.remote.get(f"/v1/incidents/{quote(ref, safe='')}/postmortem")["markdown"])
        from agent.incidents.postmortem import render_postmortem

        ledger = self.ledger()
        found = ledger.incident(ref)
        return render_postmortem(found, ledger.events(incident_id=found.id), self.obj.config.roles)


def filters(target: str | None, severity: str | None, since: str | None, open_only: bool = False) -> Filters:
    from datetime import UTC, datetime

    from agent.incidents.queries import Filters

    return Filters.parse(target, severity, since, open_only, now=datetime.now(UTC))


def as_json_text(data: Any) -> str:
    """What `emit_json` prints (agent.cli.base): JSON, or YAML under `-o yaml`, as text to compare
    between polls."""
    from agent.cli.output import current, dump

    return dump(data, "yaml" if current() == "yaml" else "json")


def show(render: Callable[[], str], watch: bool, interval: float,
         sleep: Callable[[float], None] = time.sleep) -> None:
    """Print `render()`; with `watch`, again each time it changes until Ctrl-C."""
    last: str | None = None
    terminal = sys.stdout.isatty()
    try:
        while True:
            text = render()
            if text != last:
                if terminal and watch:
                    click.clear()
                elif last is not None:
                    click.echo("")
                click.echo(text)
                last = text
            if not watch:
                return
            sleep(interval)
    except KeyboardInterrupt:
        return
