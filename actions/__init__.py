"""Mitigation actions: one module per action, each planning before it mutates anything."""
