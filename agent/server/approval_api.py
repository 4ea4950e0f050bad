"""The daemon's approval API: `POST /v1/proposals/approve` (and `/reject`, `/revert`) with a JSON
body `{"id": "p-…", "reason": "…"}` and the engineer's own Kubernetes bearer token (sent by
`hemostat approve ID --server URL`).

Framework-independent: `ApprovalApi.approve|reject|revert(headers, body)` return (HTTP status,
JSON document), and whatever HTTP server the daemon runs mounts them on `ROUTES`' fixed paths.
Each request is authenticated (TokenReview: 401 if the cluster does not vouch for the token),
authorised (SubjectAccessReview: 403 naming the missing permission), checked against the
policy's approvers rule (403 naming the policy field), and only then recorded in the ledger under
the identity the cluster vouched for, whatever name the client claims. The id is matched exactly,
and "no such proposal" and "not allowed" are one answer, so a token learns nothing about
proposals it may not act on. The reviews go through the daemon's `ReviewCache` (deadline, cache).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from agent.diagnosis.wiring import App
from agent.execution.identity import ApprovalRefused, Approving, approved_message, give_approval
from agent.execution.identity_cache import ReviewCache
from agent.execution.identity_kube import AuthError, Permission
from agent.ledger import Ledger, LedgerError, ProposalRecord, TransitionError
from agent.model import ConfigError, HemostatError, TemporaryError
from agent.model.context import utcnow
from agent.model.identity import Identity

log = structlog.get_logger("hemostat.approvals")
VERBS = ("approve", "reject", "revert")
ROUTES = {f"/v1/proposals/{verb}": verb for verb in VERBS}  # POST, JSON body {"id", "reason"}
PROPOSAL_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
MAX_BODY = 16 * 1024  # an id and a reason, not a document
Answer = tuple[int, dict[str, Any]]


@dataclass
class ApprovalApi:
    app: App
    ledger: Ledger
    identities: ReviewCache

    async def approve(self, headers: Mapping[str, str], body: bytes) -> Answer:
        return await self.handle("approve", headers, body)

    async def reject(self, headers: Mapping[str, str], body: bytes) -> Answer:
        return await self.handle("reject", headers, body)

    async def revert(self, headers: Mapping[str, str], body: bytes) -> Answer:
        return await self.handle("revert", headers, body)

    async def handle(self, verb: str, headers: Mapping[str, str], body: bytes) -> Answer:
        try:
            token = _bearer(headers)  # before the body: a stranger's request is not parsed
            ref, reason = _request(body)
            return await self._handle(ref, verb, token, reason)
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
        who, extra = await self.identities.authenticate(token)
        record = await self._authorized(ref, verb, who, extra)
        log.info("approval request", verb=verb, proposal=record.id, identity=who.describe())
        if verb == "approve":
            return await asyncio.to_thread(self._approve, record, who)
        if verb == "reject":
            return await asyncio.to_thread(self._reject, record, who, reason)
        return await self._revert(record, who, reason)

    async def _authorized(self, ref: str, verb: str, who: Identity,
                          extra: dict[str, list[str]]) -> ProposalRecord:
        """The proposal `ref` (exactly), if RBAC lets `who` act on it; else one refusal whether it
        does not exist, its target is no longer configured, or RBAC says no."""
        try:
            record = await asyncio.to_thread(self.ledger.proposal, ref, exact=True)
            namespace = self.app.config.target(record.proposal.target).namespace
            await self.identities.authorize(who, extra, Permission(verb, record.proposal.action, namespace))
        except (LedgerError, ConfigError, AuthError) as e:
            if isinstance(e, LedgerError) and e.code != "not_found":
                raise
            if isinstance(e, AuthError) and e.status != 403:
                raise
            raise AuthError(403, f"{who.name} may not {verb} {ref!r}: no such proposal, or RBAC "
                                 f"grants you no {verb} on mitigations.hemostat.io named after its "
                                 "action in its target's namespace (a Role there with resourceNames "
                                 "[ACTION]; docs/approvals.md)") from None
        return record

    def _approve(self, record: ProposalRecord, who: Identity) -> Answer:
        done = give_approval(Approving.of(self.app), self.ledger, record.id, who, utcnow())
        return 200, {"message": approved_message(done, who.describe()), "state": done.state,
                     "identity": who.to_json()}

    def _reject(self, record: ProposalRecord, who: Identity, reason: str) -> Answer:
        done = self.ledger.transition(record.id, "rejected", who.name, utcnow(),
                                      {"reason": reason or "rejected", "identity": who.to_json()})
        return 200, {"message": f"{done.id}: rejected by {who.describe()}", "state": done.state}

    async def _revert(self, record: ProposalRecord, who: Identity, reason: str) -> Answer:
        from agent.execution.executor import Executor

        executor = Executor(self.app, self.ledger, self.app.config.identity)
        outcome = await executor.revert(record.id, reason or "reverted through the approval API", by=who)
        status = 200 if outcome.ok or outcome.facts.get("pending") else 502
        return status, {"message": f"{record.id}: {outcome.detail}", **outcome.to_json()}


async def authenticated(reviews: ReviewCache, headers: Mapping[str, str]) -> Answer | None:
    """For a server that refuses before reading the body: None when the cluster vouches for the
    bearer token (TokenReview, cached), else the answer: 401, or 503 if the apiserver is slow."""
    try:
        await reviews.authenticate(_bearer(headers))
    except AuthError as e:
        log.warning("API request refused before its body", status=e.status, reason=str(e))
        return e.status, {"error": str(e)}
    except TemporaryError as e:
        return 503, {"error": str(e)}
    return None


def _bearer(headers: Mapping[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "send your Kubernetes bearer token (Authorization: Bearer ...); "
                             "`hemostat approve --server URL` does it from your kubeconfig")
    return token.strip()


def json_body(body: bytes, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object ({} for anything else); 413 past `max_bytes`."""
    if len(body) > max_bytes:
        raise AuthError(413, f"body over {max_bytes} bytes")
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # garbage, or nested past the parser's stack: a 400
        return {}
    return doc if isinstance(doc, dict) else {}


def _request(body: bytes) -> tuple[str, str]:
    """(proposal id, reason) from the JSON body."""
    doc = json_body(body, MAX_BODY)
    ref = doc.get("id")
    if not isinstance(ref, str) or not PROPOSAL_ID.fullmatch(ref):
        raise AuthError(400, 'body must be JSON {"id": "p-...", "reason": "..."} with a proposal id')
    return ref, str(doc.get("reason") or "")[:500]
