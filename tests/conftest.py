"""Shared fixtures for real services (PostgreSQL, Redis, the test apiserver) and strict hygiene.

Service fixtures live in `tests/services/` and `tests/kubeapi/`; they are registered here as
plugins so every test folder sees them. With HEMOSTAT_REQUIRE_SERVICES=1 (set by .ci/run) a
missing server fails the run instead of skipping.
"""

from __future__ import annotations

pytest_plugins: list[str] = []
