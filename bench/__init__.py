"""Hemostat's benchmarks (issue 8): `python -m bench` runs them all and writes bench/results.json.

Every figure is a ratio measured in one run, side by side, on real local parts: loopback HTTP
with injected latency, git repositories, the real PostgreSQL, the fake kube-apiserver, and the
`hemostat` CLI and daemon as processes. See docs/benchmarks.md for what each figure means.
"""
