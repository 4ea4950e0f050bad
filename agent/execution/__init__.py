"""Execution: what runs after an approval. `identity` gives and checks approvals under the
policy's approver rules; `identity_kube` (TokenReview, SubjectAccessReview) and `identity_pg`
(the PostgreSQL login role) say who a person is; `approvals` and `approval_check` re-check what
the chain proves approved before acting; `executor` claims, executes exactly once, verifies and
escalates; `reverts` undoes an executed proposal.

May import: agent.model, agent.ledger, agent.diagnosis, actions, policies. Never incidents,
server or cli.
"""
