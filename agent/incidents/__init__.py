"""Incidents: what happens around a diagnosis over time. `intake` parses and authenticates
Alertmanager webhooks and maps alerts to targets; `lifecycle` opens, joins, moves and resolves
incidents; `situation` reads where an incident stands from its events; `status` renders the
status update, `postmortem` the draft; `notify` delivers updates (Slack, webhooks, stdout), with
`slack_blocks` adding the Approve / Reject buttons.

May import: agent.model, agent.ledger, agent.diagnosis, policies. Never execution, server or cli.
"""
