"""The domain model every package may import: findings, proposals, plans, verdicts, targets.

Kept free of I/O and of heavy imports so that probes, actions and policies can depend on it
without pulling in the daemon, and so the CLI starts fast. The names below are loaded on first
use (PEP 562): `import agent.model.errors` or `agent.model.kube_http` does not build the
pydantic models of `targets`, which a command that never reads a config does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Light, and loaded at once: `redact` is also the name of its module, and a submodule imported
# later would otherwise shadow a lazily loaded function of the same name.
from agent.model.errors import ConfigError, HemostatError, PermanentError, TemporaryError
from agent.model.redact import redact, redact_dsn, shorten, truncate

if TYPE_CHECKING:
    from agent.model.domain import (
        Change,
        DecisionStep,
        Finding,
        Observation,
        Plan,
        Proposal,
        Severity,
        Verdict,
        VerdictKind,
        finding_kinds,
    )
    from agent.model.rate import Rate, judge_rate
    from agent.model.secrets import SecretRef
    from agent.model.targets import (
        BreakerSpec,
        DependencySpec,
        DeployRepoSpec,
        FallbackSpec,
        FlagScope,
        FlagSpec,
        LogsSpec,
        MetricsSpec,
        PostgresSpec,
        TargetSpec,
        Thresholds,
    )

_EXPORTS = {
    "BreakerSpec": "agent.model.targets",
    "Change": "agent.model.domain",
    "DecisionStep": "agent.model.domain",
    "DependencySpec": "agent.model.targets",
    "DeployRepoSpec": "agent.model.targets",
    "FallbackSpec": "agent.model.targets",
    "Finding": "agent.model.domain",
    "FlagScope": "agent.model.targets",
    "FlagSpec": "agent.model.targets",
    "LogsSpec": "agent.model.targets",
    "MetricsSpec": "agent.model.targets",
    "Observation": "agent.model.domain",
    "Plan": "agent.model.domain",
    "PostgresSpec": "agent.model.targets",
    "Proposal": "agent.model.domain",
    "Rate": "agent.model.rate",
    "SecretRef": "agent.model.secrets",
    "Severity": "agent.model.domain",
    "TargetSpec": "agent.model.targets",
    "Thresholds": "agent.model.targets",
    "Verdict": "agent.model.domain",
    "VerdictKind": "agent.model.domain",
    "finding_kinds": "agent.model.domain",
    "judge_rate": "agent.model.rate",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value


__all__ = [
    "BreakerSpec",
    "Change",
    "ConfigError",
    "DecisionStep",
    "DependencySpec",
    "DeployRepoSpec",
    "FallbackSpec",
    "Finding",
    "FlagScope",
    "FlagSpec",
    "HemostatError",
    "LogsSpec",
    "MetricsSpec",
    "Observation",
    "PermanentError",
    "Plan",
    "PostgresSpec",
    "Proposal",
    "Rate",
    "SecretRef",
    "Severity",
    "TargetSpec",
    "TemporaryError",
    "Thresholds",
    "Verdict",
    "VerdictKind",
    "finding_kinds",
    "judge_rate",
    "redact",
    "redact_dsn",
    "shorten",
    "truncate",
]
