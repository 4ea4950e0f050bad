"""The daemon's approval API: `POST /v1/proposals/{id}/approve|revert|reject` with the engineer's
own Kubernetes bearer token (sent by `hemostat approve --server URL`).

Framework-independent: `ApprovalApi.handle(method, path, headers, body)` returns (HTTP status,
JSON document), and whatever HTTP server the daemon runs mounts it. Each request is
authenticated (TokenReview: 401 if the cluster does not vouch for the token), authorised
(SubjectAccessReview: 403 naming the missing permission), checked against the policy's
approvers rule (403 naming the policy field), and only then recorded in the ledger under the
identity the cluster vouched for, whatever name the client claims.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from agent.identity import ApprovalRefused, Approving, approved_message, give_approval
from agent.identity_kube import AuthError, KubernetesIdentities, Permission
from agent.ledger import Ledger, LedgerError, ProposalRecord, TransitionError
from agent.model import ConfigError, HemostatError, TemporaryError
from agent.model.context import utcnow
from agent.model.identity import Identity
from agent.wiring import App

log = structlog.get_logger("hemostat.approvals")
PREFIX = "/v1/proposals/"
ROUTE = re.compile(r"^/v1/proposals/(?P<ref>[A-Za-z0-9._-]{1,100})/(?P<verb>approve|revert|reject)$")
MAX_BODY = 16 * 1024  # a reason, not a document
Answer = tuple[int, dict[str, Any]]


@dataclass
class ApprovalApi:
    app: App
    ledger: Ledger
    identities: KubernetesIdentities

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        match = ROUTE.match(path.split("?", 1)[0])
        if match is None:
            return 404, {"error": "POST /v1/proposals/ID/approve (or /revert, /reject)"}
        if method != "POST":
            return 405, {"error": f"{method} not allowed; POST"}
        try:
            return await self._handle(match["ref"], match["verb"], _bearer(headers), _reason(body))
        except AuthError as e:
            log.warning("approval refused", status=e.status, reason=str(e))
            return e.status, {"error": str(e)}
        except ApprovalRefused as e:
            log.warning("approval refused by policy", reason=str(e))
            return 403, {"error": str(e)}
        except TransitionError as e:
            return 409, {"error": str(e)}
        except LedgerError as e:
            status = {"not_found": 404, "ambiguous": 409}.get(e.code or "", 503)
            return status, {"error": str(e)}
        except TemporaryError as e:
            return 503, {"error": str(e)}
        except HemostatError as e:  # refused revert, unknown target: the request cannot succeed
            return 409, {"error": str(e)}

    async def _handle(self, ref: str, verb: str, token: str, reason: str) -> Answer:
        who, extra = await asyncio.to_thread(self.identities.authenticate, token)
        record = await asyncio.to_thread(self.ledger.proposal, ref)
        need = Permission(verb, record.proposal.action, self._namespace(record))
        await asyncio.to_thread(self.identities.authorize, who, extra, need)
        log.info("approval request", verb=verb, proposal=record.id, identity=who.describe())
        if verb == "approve":
            return await asyncio.to_thread(self._approve, record, who)
        if verb == "reject":
            return await asyncio.to_thread(self._reject, record, who, reason)
        return await self._revert(record, who, reason)

    def _namespace(self, record: ProposalRecord) -> str:
        try:
            return self.app.config.target(record.proposal.target).namespace
        except ConfigError:
            raise HemostatError(f"{record.id}: target {record.proposal.target!r} is no longer "
                                "configured; nothing to authorise it against") from None

    def _approve(self, record: ProposalRecord, who: Identity) -> Answer:
        done = give_approval(Approving.of(self.app), self.ledger, record.id, who, utcnow())
        return 200, {"message": approved_message(done, who.describe()), "state": done.state,
                     "identity": who.to_json()}

    def _reject(self, record: ProposalRecord, who: Identity, reason: str) -> Answer:
        done = self.ledger.transition(record.id, "rejected", who.name, utcnow(),
                                      {"reason": reason or "rejected", "identity": who.to_json()})
        return 200, {"message": f"{done.id}: rejected by {who.describe()}", "state": done.state}

    async def _revert(self, record: ProposalRecord, who: Identity, reason: str) -> Answer:
        from agent.executor import Executor

        executor = Executor(self.app, self.ledger, self.app.config.identity)
        outcome = await executor.revert(record.id, reason or "reverted through the approval API", by=who)
        status = 200 if outcome.ok or outcome.facts.get("pending") else 502
        return status, {"message": f"{record.id}: {outcome.detail}", **outcome.to_json()}


def _bearer(headers: Mapping[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "send your Kubernetes bearer token (Authorization: Bearer ...); "
                             "`hemostat approve --server URL` does it from your kubeconfig")
    return token.strip()


def _reason(body: bytes) -> str:
    if not body.strip():
        return ""
    if len(body) > MAX_BODY:
        raise AuthError(413, f"body over {MAX_BODY} bytes")
    try:
        doc = json.loads(body)
    except ValueError:
        raise AuthError(400, "body must be JSON, e.g. {\"reason\": \"...\"}") from None
    reason = doc.get("reason", "") if isinstance(doc, dict) else ""
    return str(reason)[:500]
