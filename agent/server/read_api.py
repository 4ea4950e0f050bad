"""The daemon's read API: what `hemostat incidents|proposals|show|status|postmortem --server URL`
and the web view (agent.server.web) read, since the ledger may live inside the pod.

    GET /v1/incidents?target=&severity=&since=&open=true     incidents, newest first
    GET /v1/incidents/{id}                                   + its timeline and proposals
    GET /v1/incidents/{id}/status | /postmortem              the status update | the draft
    GET /v1/proposals?target=&severity=&since=&all=true      waiting (all: every state)
    GET /v1/proposals/{id}                                   + its timeline

Checked like an approval, with the caller's own Kubernetes bearer token: TokenReview (401), then
SubjectAccessReviews on `hemostat.io` resources in the target's namespace: `list incidents`
(`list mitigations`) for the lists, which show only the namespaces the caller may list (403
when none); `get incidents` named after the target for one incident, its status and
post-mortem (plus `list mitigations` for the proposals it shows); `get mitigations` named
after the action for one proposal. Documents are the ones `--json` prints from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from agent.diagnosis.wiring import App
from agent.execution.identity_kube import AuthError, KubernetesIdentities, Permission
from agent.incidents.queries import Filters
from agent.ledger import IncidentRecord, Ledger, LedgerError
from agent.model import ConfigError, HemostatError, TemporaryError
from agent.model.context import utcnow
from agent.model.identity import Identity
from agent.server.approval_api import _bearer

log = structlog.get_logger("hemostat.read")
INCIDENTS, PROPOSALS = "/v1/incidents", "/v1/proposals"
ROUTES = (INCIDENTS, PROPOSALS)  # GET; and every path under each, with an id (prefix routes)
WAITING = ("proposed", "approved")
Answer = tuple[int, Any]


@dataclass
class Access:
    """One caller's SubjectAccessReviews within one request, each asked once."""

    identities: KubernetesIdentities
    who: Identity
    extra: dict[str, list[str]]
    _answers: dict[Permission, AuthError | None] = field(default_factory=dict)

    def check(self, need: Permission) -> AuthError | None:
        if need not in self._answers:
            try:
                self.identities.authorize(self.who, self.extra, need)
                self._answers[need] = None
            except AuthError as e:
                if e.status != 403:  # the daemon cannot ask: not an answer about the caller
                    raise
                self._answers[need] = e
        return self._answers[need]

    def require(self, need: Permission) -> None:
        refusal = self.check(need)
        if refusal is not None:
            raise refusal


@dataclass
class ReadApi:
    app: App
    ledger: Ledger
    identities: KubernetesIdentities

    def handle(self, headers: Mapping[str, str], body: bytes = b"") -> Answer:
        """GET under /v1/incidents or /v1/proposals; `headers` is agent.server.http.Head (path, query)."""
        path = str(getattr(headers, "path", "/")).rstrip("/")
        query: Mapping[str, str] = getattr(headers, "query", {})
        try:
            token = _bearer(headers)
            who, extra = self.identities.authenticate(token)
            access = Access(self.identities, who, extra)
            return 200, self._route(path, query, access)
        except AuthError as e:
            log.warning("read refused", status=e.status, path=path[:100], reason=str(e))
            return e.status, {"error": str(e)}
        except ConfigError as e:  # a bad filter
            return 400, {"error": str(e)}
        except LedgerError as e:
            status = {"not_found": 404, "ambiguous": 409}.get(e.code or "", 503)
            return status, {"error": str(e)}
        except TemporaryError as e:
            return 503, {"error": str(e)}
        except HemostatError as e:
            return 409, {"error": str(e)}

    def _route(self, path: str, query: Mapping[str, str], access: Access) -> Any:
        if path == INCIDENTS:
            return self.incidents(Filters.from_query(query, utcnow()), access)
        if path == PROPOSALS:
            show_all = query.get("all", "").lower() in ("true", "1")
            return self.proposals(Filters.from_query(query, utcnow()), show_all, access)
        parts = path.split("/")  # "", "v1", kind, id[, what]
        pages: dict[tuple[str, str], Callable[[str, Access], Any]] = {
            ("incidents", ""): self.incident, ("incidents", "status"): self.status,
            ("incidents", "postmortem"): self.postmortem, ("proposals", ""): self.proposal}
        page = pages.get((parts[2], parts[4] if len(parts) == 5 else "")) if len(parts) in (4, 5) else None
        if page is None or not parts[3]:
            raise LedgerError(f"no such endpoint: {path[:100]}", code="not_found")
        return page(parts[3], access)

    def namespace(self, target: str) -> str:
        """The target's namespace; "" (cluster-wide) for one no longer configured."""
        try:
            return self.app.config.target(target).namespace
        except ConfigError:
            return ""

    def _listable(self, resource: str, targets: set[str], access: Access) -> set[str]:
        """The namespaces (of `targets` and of every configured target) the caller may list
        `resource` in; 403 naming the permission when there is none."""
        namespaces = {self.namespace(t) for t in targets} | {t.namespace for t in self.app.config.targets}
        allowed = {ns for ns in namespaces if access.check(Permission("list", "", ns, resource)) is None}
        if not allowed:
            access.require(Permission("list", "", sorted(namespaces)[0] if namespaces else "", resource))
        return allowed

    def incidents(self, filters: Filters, access: Access) -> list[dict[str, Any]]:
        records = filters.incidents(self.ledger.incidents(open_only=filters.open_only))
        allowed = self._listable("incidents", {r.target for r in records}, access)
        return [r.to_json() for r in records if self.namespace(r.target) in allowed]

    def proposals(self, filters: Filters, show_all: bool, access: Access) -> list[dict[str, Any]]:
        severity = {i.id: i.severity for i in self.ledger.incidents()} if filters.severity else {}
        records = filters.proposals(self.ledger.proposals(states=None if show_all else WAITING), severity)
        allowed = self._listable("mitigations", {r.proposal.target for r in records}, access)
        return [r.to_json() for r in records if self.namespace(r.proposal.target) in allowed]

    def _incident(self, ref: str, access: Access) -> IncidentRecord:
        record = self.ledger.incident(ref)
        access.require(Permission("get", record.target, self.namespace(record.target), "incidents"))
        return record

    def incident(self, ref: str, access: Access) -> dict[str, Any]:
        record = self._incident(ref, access)
        access.require(Permission("list", "", self.namespace(record.target), "mitigations"))
        events = self.ledger.events(incident_id=record.id)
        proposals = self.ledger.proposals(incident_id=record.id)
        return {**record.to_json(), "events": [e.to_json() for e in events],
                "proposals": [p.to_json() for p in proposals]}

    def status(self, ref: str, access: Access) -> dict[str, Any]:
        from agent.incidents.status import status_update

        record = self._incident(ref, access)
        update = status_update(record, self.ledger.events(incident_id=record.id), utcnow(),
                               self.app.config.executor.status_update_minutes, self.app.config.roles)
        return {"id": record.id, "headline": update.headline(), "text": update.text(),
                "update": update.to_json()}

    def postmortem(self, ref: str, access: Access) -> dict[str, Any]:
        from agent.incidents.postmortem import render_postmortem

        record = self._incident(ref, access)
        text = render_postmortem(record, self.ledger.events(incident_id=record.id), self.app.config.roles)
        return {"id": record.id, "markdown": text}

    def proposal(self, ref: str, access: Access) -> dict[str, Any]:
        record = self.ledger.proposal(ref)
        target = record.proposal.target
        access.require(Permission("get", record.proposal.action, self.namespace(target), "mitigations"))
        events = self.ledger.events(proposal_id=record.id)
        return {**record.to_json(), "events": [e.to_json() for e in events]}
