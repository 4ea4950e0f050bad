"""Diagnosis: from a target to a decided set of proposals, with no side effect but the probes'
reads. `runner` runs the probes in parallel (timeouts, breakers, gaps); `triage` sets severity,
onset and what changed; `evidence` weighs what speaks for and against a cause; `decide` walks the
decision tree (policies.tree) into proposals; `preview` plans them; `service` is the whole pass
and `drill` its replay from a recorded scenario. `registry` discovers probes and actions through
entry points; `wiring` builds the `App` (config, registry, policy, tree) every stage takes.

May import: agent.model, agent.ledger, probes, actions, policies. Never incidents, execution,
server or cli.
"""
