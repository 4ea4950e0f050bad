"""The PostgreSQL identity source: approving through the shared ledger as your own login role.

An approver's role may only EXECUTE `hemostat_approve(ref)` and `hemostat_reject(ref, reason)`
(agent/ledger/pg_trust.py, granted by `hemostat ledger migrate --approver-role`). Those functions
record `session_user` (the login PostgreSQL authenticated) with the roles it belongs to as its
groups, so nobody can approve as someone else by typing a name. The CLI's `approve` and `reject`
take this path on a PostgreSQL ledger (unless --user names someone); it needs no other privilege
and runs no migrations. The policy's approvers rule is checked inside the same transaction, so a
refused approval is never recorded; the executor checks it again before running anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.model import HemostatError, redact

if TYPE_CHECKING:
    from agent.model.config import Config

CONNECT_TIMEOUT_S = 10


class LoginApprovalError(HemostatError):
    code = "approval_refused"


Check = Callable[[dict[str, Any]], "str | None"]


def approve_by_login(config: Config, ref: str) -> str:
    """`hemostat approve` on a PostgreSQL ledger: as the login role, if the policy admits it."""
    from agent.execution.identity import Approving, rules_for
    from agent.model.identity import Identity

    rules = Approving.load(config)

    def policy(answer: dict[str, Any]) -> str | None:
        who = Identity.from_json(answer["identity"])
        why = rules_for(rules, answer["action"]).refusal(who, (*answer["proposers"], rules.daemon))
        return f"{answer['id']}: {why}" if why else None

    answer = approve_as_login(_dsn(config), ref, policy)
    return (f"{answer['id']} {answer['action']} {answer['subject']}: approved by "
            f"{answer['identity']['name']} (postgres) ({answer['approvals']}/{answer['needed']}); "
            f"now {answer['state']}")


def reject_by_login(config: Config, ref: str, reason: str) -> str:
    answer = reject_as_login(_dsn(config), ref, reason)
    return (f"{answer['id']} {answer['action']} {answer['subject']}: rejected by "
            f"{answer['identity']['name']} (postgres)")


def _dsn(config: Config) -> str:
    assert config.store.dsn is not None  # StoreConfig requires it for postgres
    return config.store.dsn.resolve()


def approve_as_login(dsn: str, ref: str, check: Check | None = None) -> dict[str, Any]:
    """Approve proposal `ref` as the DSN's login role; the function's answer (id, action, state,
    counts, identity, proposers). `check` sees that answer before the transaction commits and
    may refuse (the policy's approvers rule): then nothing is recorded."""
    return _call(dsn, "SELECT hemostat_approve(%s)", (ref,), check)


def reject_as_login(dsn: str, ref: str, reason: str) -> dict[str, Any]:
    return _call(dsn, "SELECT hemostat_reject(%s, %s)", (ref, reason), None)


def _call(dsn: str, query: str, params: tuple[str, ...], check: Check | None) -> dict[str, Any]:
    import psycopg  # only this path needs it

    from agent.ledger.postgres import _describe

    where, secret = _describe(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S,
                             application_name="hemostat-approve") as conn, conn.transaction():
            row = conn.execute(query, params).fetchone()
            answer = _answer(row)
            refusal = check(answer) if check else None
            if refusal:
                raise LoginApprovalError(refusal)  # leaving the block rolls the approval back
    except psycopg.errors.RaiseException as e:  # the function's own refusal: already readable
        raise LoginApprovalError(str(e.diag.message_primary)) from None
    except psycopg.errors.InsufficientPrivilege:
        raise LoginApprovalError(
            f"your role may not approve on {where}: it needs membership of an approver role "
            "(granted by `hemostat ledger migrate --approver-role`, docs/install.md)") from None
    except psycopg.Error as e:
        reason = redact(" ".join(str(e).split()), (secret,))
        raise LoginApprovalError(f"cannot reach the ledger {where}: {reason}",
                                 code="ledger_unavailable") from None
    return answer


def _answer(row: Any) -> dict[str, Any]:
    assert row is not None
    value = row[0]
    return value if isinstance(value, dict) else dict(json.loads(value))
