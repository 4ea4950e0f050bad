"""Hemostat: the incident first responder.

The CLI (`agent.cli`) and the daemon (`agent.daemon`) are the entry points; `agent.model` is the
small domain model that probes, actions and policies share.
"""

__version__ = "0.1.0"
