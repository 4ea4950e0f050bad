"""The domain model every package may import: findings, proposals, plans, verdicts, targets.

Kept free of I/O and of heavy imports so that probes, actions and policies can depend on it
without pulling in the daemon, and so the CLI starts fast.
"""

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
from agent.model.errors import (
    ConfigError,
    HemostatError,
    PermanentError,
    TemporaryError,
)
from agent.model.rate import Rate, judge_rate
from agent.model.redact import redact, redact_dsn, shorten, truncate
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
    SecretRef,
    TargetSpec,
    Thresholds,
)

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
