"""`POST /v1/diagnose`: an engineer's `hemostat diagnose TARGET --server URL`, run by the daemon.

The daemon already has what a diagnosis needs (the probes loaded, the credentials of the
cluster it runs in, a route to the in-cluster PostgreSQL and Prometheus), so the CLI sends the
target's name with the engineer's Kubernetes bearer token and prints what comes back, as
kubectl does with the API server. Checked like an approval: TokenReview (401), then a
SubjectAccessReview for `create` on `diagnoses.hemostat.io` named after the target in its
namespace (403 naming the permission). Body: `{"target": "checkout", "record": true}`; with
`record`, the incident and proposals go to the ledger with the caller as the one who asked
(a proposer, for separation of duties), as a local `hemostat diagnose` does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from agent.diagnosis.wiring import App
from agent.execution.identity_cache import ReviewCache
from agent.execution.identity_kube import AuthError, Permission
from agent.ledger import Ledger
from agent.model import ConfigError, HemostatError, TemporaryError
from agent.model.context import utcnow
from agent.model.identity import Identity
from agent.server.approval_api import Answer, _bearer, json_body

log = structlog.get_logger("hemostat.diagnose")
ROUTE = "/v1/diagnose"
RESOURCE = "diagnoses"
TARGET_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")  # the whole name (fullmatch)
MAX_BODY = 4 * 1024
CONCURRENT = 4  # remote diagnoses at once; more is 429 (each runs every probe of its target)


@dataclass
class DiagnoseApi:
    app: App
    ledger: Ledger
    identities: ReviewCache
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENT))

    async def handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        try:
            token = _bearer(headers)  # before the body: a stranger's request is not parsed
            name, record = _request(body)
            who, extra = await self.identities.authenticate(token)
            spec = await self._authorized(name, who, extra)
            if spec is None:
                return 404, {"error": f"no target named {name!r} in the daemon's config"}
            if self.gate.locked():
                return 429, {"error": f"{CONCURRENT} diagnoses already running; retry in a few seconds"}
            async with self.gate:
                log.info("remote diagnosis", target=spec.name, identity=who.describe(), record=record)
                return 200, await self._diagnose(spec, who, record)
        except AuthError as e:
            log.warning("remote diagnosis refused", status=e.status, reason=str(e))
            return e.status, {"error": str(e)}
        except TemporaryError as e:
            return 503, {"error": str(e)}
        except HemostatError as e:
            return 409, {"error": str(e)}

    async def _authorized(self, name: str, who: Identity, extra: dict[str, list[str]]) -> Any:
        """The target, if RBAC lets `who` diagnose it; None (a 404) for a name that is not
        configured, said only to someone who may diagnose that name cluster-wide. Everyone else
        gets one refusal, naming neither the target's namespace nor whether it exists."""
        try:
            spec = self.app.config.target(name)
        except ConfigError:
            spec = None
        need = Permission("create", name, spec.namespace if spec else "", resource=RESOURCE)
        try:
            await self.identities.authorize(who, extra, need)
        except AuthError as e:
            if e.status != 403:
                raise
            raise AuthError(403, f"{who.name} may not diagnose target {name!r}: no such target, or "
                                 f"RBAC grants you no create on {RESOURCE}.hemostat.io named {name!r} "
                                 "in its namespace (docs/approvals.md)") from None
        return spec

    async def _diagnose(self, spec: Any, who: Identity, record: bool) -> dict[str, Any]:
        from agent.diagnosis import service
        from agent.incidents.lifecycle import record_asked

        ledger = self.ledger if record else None
        history = await asyncio.to_thread(service.history_from, ledger, self.app) if ledger else []
        past = await asyncio.to_thread(service.past_findings, ledger, spec.name) if ledger else []
        result = await service.diagnose(self.app, spec, history=history, past=past)
        if ledger is None:
            return {**result.to_json(), "incident": None}
        doc, incident = await asyncio.to_thread(record_asked, self.app, ledger, result, who.name)
        if incident is not None:  # who asked, in the incident's own timeline
            await asyncio.to_thread(ledger.append, "diagnosis_requested", who.name, utcnow(),
                                    incident_id=incident.id, data={"identity": who.to_json()})
        return doc


def _request(body: bytes) -> tuple[str, bool]:
    """(target name, whether to record) from the JSON body."""
    doc = json_body(body, MAX_BODY)
    name, record = doc.get("target"), doc.get("record", True)
    if not isinstance(name, str) or not TARGET_NAME.fullmatch(name):
        raise AuthError(400, 'body must be JSON {"target": "NAME", "record": true|false}')
    if not isinstance(record, bool):
        raise AuthError(400, '"record" must be true or false')
    return name, record
