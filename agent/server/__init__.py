"""The daemon (`hemostat run`): `daemon` owns the event loop and its named tasks (sweeps, the
executor, status-update cadence); `http` is the bounded HTTP server and `routes` its endpoint
table; `approval_api`, `diagnose_api` and `slack_api` are the authenticated APIs; `sweeps`,
`announce`, `metrics`, `tasks` and `watchdog` are its companions.

A top of the house: may import every layer below; nothing imports it.
"""
