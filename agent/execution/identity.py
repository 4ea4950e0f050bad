"""Identity sources: who is approving, as some system vouches for it.

- `kubernetes` (in a cluster, the default): the engineer's own kubeconfig credential, checked by
  the daemon with a TokenReview and authorised with a SubjectAccessReview (agent.execution.identity_kube).
- `asserted`: the name given with --user, else the OS user. It proves nothing, so the policy
  honours it only where it lists `asserted` in `approvers.sources` (the demo, staging drills).
- `postgres` and `slack` identities are recorded by the ledger's approval function and the Slack
  interaction endpoint, in the same shape (agent.model.identity.Identity).

`give_approval` is the one path every source's approval takes into the ledger: the policy's
approvers rule and separation of duties are checked here, and again by the executor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.model import HemostatError
from agent.model.identity import Identity
from policies.approvers import Approvals
from policies.model import Policy

if TYPE_CHECKING:
    from datetime import datetime

    from agent.diagnosis.wiring import App
    from agent.ledger import Ledger, ProposalRecord
    from agent.model.config import Config


@dataclass(frozen=True)
class Approving:
    """What deciding an approval needs: the policy (and its file, for messages) and the daemon's
    own name (it proposes everything). Built from the App, or for `approve` from the config
    alone, without importing every plugin."""

    policy: Policy
    policy_path: Path
    daemon: str
    seal_key: bytes | None = None  # store.seal_key: the daemon's seal on approvals it records

    @classmethod
    def of(cls, app: App) -> Approving:
        return cls(app.policy, app.policy_path, app.config.identity, seal_key_of(app.config))

    @classmethod
    def load(cls, config: Config) -> Approving:
        from policies.model import bundled_policy_path, load_policy

        path = config.policy or bundled_policy_path("default")
        return cls(load_policy(path, None), path, config.identity, seal_key_of(config))


def seal_key_of(config: Config) -> bytes | None:
    """The seal key (store.seal_key), or None when none is configured."""
    ref = config.store.seal_key
    return ref.resolve().encode() if ref is not None else None


class ApprovalRefused(HemostatError):
    """The policy does not let this identity approve this proposal (a permanent answer)."""

    code = "approval_refused"


def os_user() -> str:
    """The login name, without crashing for a UID that has no passwd entry (OpenShift's
    random UIDs, `podman run --user 12345`): then `uid:12345`."""
    for var in ("HEMOSTAT_USER", "USER", "LOGNAME"):
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return f"uid:{os.getuid()}"


def asserted(name: str | None) -> Identity:
    """The asserted identity for `--user NAME`, else the OS user."""
    return Identity.asserted(name.strip() if name and name.strip() else os_user())


def proposers(record: ProposalRecord, rules: Approving) -> tuple[str, ...]:
    """Who counts as having proposed it: Hemostat itself (under its configured name), and the
    human whose `diagnose` produced it."""
    return (*record.proposal.proposers(), rules.daemon)


def rules_for(rules: Approving, action: str, revert: bool = False) -> Approvals:
    return Approvals(rules.policy, rules.policy_path.name, action, revert)


def give_approval(rules: Approving, ledger: Ledger, ref: str, who: Identity,
                  now: datetime) -> ProposalRecord:
    """Check `who` against the policy and record the approval; refused with the policy field."""
    record = ledger.proposal(ref)
    why = rules_for(rules, record.proposal.action).refusal(who, proposers(record, rules))
    if why is not None:
        raise ApprovalRefused(f"{record.id}: {why}")
    return ledger.approve(record.id, who, now, seal_key=rules.seal_key)


def approved_message(record: ProposalRecord, who: str) -> str:
    needed = max(1, record.verdict.approvals_required)
    return (f"{record.id} {record.proposal.action} {record.proposal.subject}: approved by "
            f"{who} ({len(record.approvals)}/{needed}); now {record.state}")
