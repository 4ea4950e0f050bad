"""Hemostat: the incident first responder.

The house by stage (docs/architecture.md has the map; import-linter in pyproject.toml keeps it):
`model` (the domain, imports nothing of Hemostat) → `ledger` (append-only events and their
projections) → `diagnosis` (probes run, triage, the decision tree, the gate) → `incidents`
(alert intake, lifecycle, status updates, post-mortems, notifiers) and `execution` (approvals
and who gave them, the executor, reverts) → `server` (the daemon) and `cli` (the `hemostat`
command), the only tops. `probes`, `actions` and `policies` sit between the ledger and the
model and import only `agent.model`.
"""

__version__ = "0.1.0"
