"""Diagnostic probes: one module per probe, each collecting (I/O) and analysing (pure)."""
