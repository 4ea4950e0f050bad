"""What Hemostat guards: a target and the parts of it each probe and action looks at.

These are user-facing config models (pydantic v2, unknown keys rejected) that live in the
domain model because probes and actions read them. Secrets are only ever references
(`{env: NAME}` or `{file: PATH}`), never inline values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.model.prometheus import PrometheusSpec
from agent.model.secrets import SecretRef
from agent.model.urls import UrlRef


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """When an observation becomes a finding. Units are in the names."""

    recent_deploy_minutes: float = Field(30, gt=0, description="a deploy this recent is a suspect")
    error_rate: float = Field(0.05, ge=0, le=1, description="errors/requests that is a spike")
    error_rate_sev1: float = Field(0.5, ge=0, le=1, description="errors/requests that is an outage")
    look_again_s: float = Field(120, gt=0, le=3600, description="too few requests to judge even "
                                "after widening the window: diagnose again this much later")
    errors_per_minute: float = Field(10, ge=0, description="error rate when no request counter")
    min_requests: int = Field(
        100, ge=1, description="requests a ratio needs before it may raise severity; fewer is "
        "reported with its n (one error in ten requests is noise, not SEV-2)")
    baseline_factor: float = Field(
        2.0, ge=1, description="how many times its baseline a rate must be to count as a spike")
    dependency_slow_ms: float = Field(2000, gt=0)
    log_errors: int = Field(10, ge=1, description="matching log lines that make an error spike")
    log_errors_per_minute: float = Field(
        2, ge=0, description="matching log lines per minute below which they are noise, not a spike")
    long_query_seconds: float = Field(60, gt=0)
    idle_in_transaction_seconds: float = Field(300, gt=0)
    lock_wait_seconds: float = Field(10, gt=0)
    connections_saturated_ratio: float = Field(0.9, gt=0, le=1)
    restarts: int = Field(3, ge=1)
    cpu_saturated_ratio: float = Field(0.9, gt=0)
    memory_saturated_ratio: float = Field(0.9, gt=0)


def check_ref_name(name: str) -> str:
    """`name` if git would accept it as a branch (`git check-ref-format --branch`); else why not.

    The value reaches git's command line, so besides git's own rules a leading `-` is refused:
    `--output=/etc/passwd` is an option, not a branch.
    """
    why = next((reason for bad, reason in _REF_RULES if bad(name)), None)
    if why:
        raise ValueError(f"{name!r} is not a valid git branch name: {why}")
    return name


_REF_RULES = (
    (lambda n: not n, "it is empty"),
    (lambda n: n.startswith("-"), "it starts with '-' (git would read it as an option)"),
    (lambda n: any(ord(c) < 32 or ord(c) == 127 or c in " ~^:?*[\\" for c in n),
     "it contains a space, a control character or one of ~ ^ : ? * [ \\"),
    (lambda n: ".." in n or "@{" in n or "//" in n, "it contains '..', '@{' or '//'"),
    (lambda n: n == "@" or n.endswith((".", "/", ".lock")) or n.startswith("/"),
     "it is '@', starts with '/', or ends with '.', '/' or '.lock'"),
    (lambda n: any(part.startswith(".") for part in n.split("/")), "a component starts with '.'"),
)


class DeployRepoSpec(_Strict):
    """A git repository whose commits on `branch` are deploys (GitOps or deploy-on-merge).

    The `git-revert` rollback clones `remote` (default: `path`'s `origin`, or `path` itself),
    reverts the offending commits and pushes; credentials only by reference: `push_token` is sent
    as an `Authorization: Bearer` header to an https remote, `ssh_key` is a private key file.
    """

    path: Path
    branch: str = Field("main", max_length=255)
    window_minutes: float = Field(180, gt=0, description="how far back `git log` looks")
    max_commits: int = Field(10, ge=1, le=1000)
    remote: str | None = Field(None, description="where GitOps reads from; default: origin of path")
    push_token: SecretRef | None = None
    ssh_key: SecretRef | None = None

    @field_validator("branch")
    @classmethod
    def _git_ref(cls, value: str) -> str:
        return check_ref_name(value)


class BreakerSpec(_Strict):
    """An app-side pybreaker breaker whose state lives in Redis (`CircuitRedisStorage`)."""

    name: str
    redis_url: SecretRef
    namespace: str | None = Field(
        None, description="the `namespace=` the app passes to CircuitRedisStorage (keys are "
        "`<namespace>:pybreaker:state`, ...); None means the breaker's name, '' means none")
    reset_timeout_s: float = Field(
        60, gt=0, description="the app's `reset_timeout`: a forced open is shifted by it to last its TTL")


class FallbackSpec(_Strict):
    """Where a dependency's active endpoint is switched for a failover."""

    backend: Literal["configmap", "http-flag", "file"]
    key: str
    primary: str
    secondary: str
    configmap: str | None = None
    url: UrlRef | None = None
    path: Path | None = None
    token: SecretRef | None = None
    method: Literal["PUT", "POST"] = Field("PUT", description="how an http-flag value is written")


class DependencySpec(_Strict):
    """A dependency's health endpoint (`curl -I .../health`) and how to mitigate its outage."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    url: UrlRef = Field(description="inline, or {env: NAME} / {file: PATH} when it holds a token")
    method: Literal["HEAD", "GET"] = "HEAD"
    expect_status: list[int] = Field(default_factory=lambda: [200, 204])
    timeout_s: float = Field(5.0, gt=0, le=60)
    statuspage_url: UrlRef | None = None
    allow_redirects_to: list[str] = Field(
        default_factory=list, description="hosts a status page may redirect to besides its own")
    breaker: BreakerSpec | None = None
    fallback: FallbackSpec | None = None
    critical: bool = Field(True, description="the app cannot serve without it")


class MetricsSpec(_Strict):
    """An app's Prometheus endpoint, as one URL or as every ready pod behind a Service, and which
    counters are errors and which are requests."""

    url: UrlRef | None = None
    service: str | None = Field(
        None, description="scrape each ready pod behind this Service (its EndpointSlices), not one "
        "URL: through a Service the two scrapes of a rate may hit different pods")
    port: int | str | None = Field(None, description="EndpointSlice port (number or name); default its first")
    path: str = Field("/metrics", pattern=r"^/")
    scheme: Literal["http", "https"] = "http"
    max_pods: int = Field(50, ge=1, le=500)
    error_counters: list[str] = Field(default_factory=lambda: ["http_requests_errors_total"])
    request_counters: list[str] = Field(default_factory=lambda: ["http_requests_total"])
    scrape_interval_s: float = Field(2.0, gt=0, le=120, description="the window: gap between two scrapes")
    max_window_s: float = Field(
        8.0, gt=0, le=600, description="too few requests between two scrapes (below "
        "`thresholds.min_requests`): scrape again every `scrape_interval_s` until the window is "
        "this long, before judging (keep it under `probe_timeout_s`)")
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_body_bytes: int = Field(2 << 20, ge=1024, le=64 << 20,
                                description="a scrape reads at most this much (cut at a whole line)")

    @model_validator(mode="after")
    def _one_source(self) -> MetricsSpec:
        if (self.url is None) == (self.service is None):
            raise ValueError("give exactly one of 'url' (one endpoint) or 'service' (each pod behind it)")
        return self


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


# An error level as structured logs write it, in any case: JSON `"level":"error"`,
# `"severity":"ERROR"`, logfmt `level=error` / `lvl=fatal`. Letter classes, not `(?i)`, so the
# multi-pattern engine (probes/log_scan.py) takes it as it takes the plain patterns; plain groups,
# not `(?:`, so `grep -E` reads it too (bench/logs.py compares with grep).
LEVEL_ERROR = (r'(' + "|".join(map(_any_case, ("level", "severity", "lvl"))) + r')"? ?[:=] ?"?('
               + "|".join(map(_any_case, ("error", "fatal", "critical", "panic", "emerg"))) + r')\b')


class LogsSpec(_Strict):
    """Which log lines are errors, and how much of each pod's log to read."""

    patterns: list[str] = Field(
        default_factory=lambda: [r"\bERROR\b", r"\bFATAL\b", "Traceback", LEVEL_ERROR])
    tail_lines: int = Field(100, ge=1, le=10000)
    since_seconds: int = Field(900, ge=1)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _compiled(value)


def _compiled(patterns: list[str]) -> list[str]:
    """The patterns, once each is known to compile; else which one and why."""
    import re

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {e}") from e
    return patterns


class PostgresSpec(_Strict):
    """The app's database, probed with a least-privilege role (`pg_monitor`)."""

    dsn: SecretRef
    connect_timeout_s: float = Field(5.0, gt=0, le=60)
    statement_timeout_ms: int = Field(5000, gt=0)
    exclude_roles: list[str] = Field(default_factory=list, description="never killed")
    application_name: str = "hemostat"


class FlagScope(_Strict):
    """What a feature flag governs. `feature-flag-off` is proposed for a flag only when the
    failing evidence matches one of these; a flag that declares nothing is never proposed."""

    routes: list[str] = Field(default_factory=list, description="URL paths ('/api/v2/pay') that "
                              "appear in the error lines of what the flag turns on")
    signatures: list[str] = Field(default_factory=list, description="regular expressions searched "
                                  "in error signatures and lines")
    components: list[str] = Field(default_factory=list, description="finding subjects: a "
                                  "dependency's name, a deployment, postgres:<db>")

    @field_validator("signatures")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _compiled(value)

    def declared(self) -> bool:
        return bool(self.routes or self.signatures or self.components)


class FlagSpec(_Strict):
    """A feature flag that can be turned off as a mitigation, and what it governs."""

    name: str
    governs: FlagScope = Field(default_factory=FlagScope)
    backend: Literal["configmap", "unleash", "webhook"]
    configmap: str | None = None
    key: str | None = None
    url: UrlRef | None = None
    project: str = "default"
    environment: str = "production"
    token: SecretRef | None = None


Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", max_length=63)]


class TargetSpec(_Strict):
    """One app Hemostat guards, and everything the probes and actions need to know about it."""

    name: Name
    namespace: str = "default"
    deployment: str | None = Field(None, description="the workload's name (of kind `kind`)")
    kind: Literal["Deployment", "StatefulSet", "DaemonSet", "Rollout"] = Field(
        "Deployment", description="what `deployment` names; Rollout is Argo Rollouts'")
    container: str | None = None
    deploy_repo: DeployRepoSpec | None = None
    gitops: Literal["git-revert"] | None = Field(
        None, description="'git-revert': the target runs what deploy_repo's branch says, deployed by "
        "something Hemostat does not read (deploy-on-merge, a controller out of reach): rollback "
        "reverts the deploy in git and is verified by re-probing the app's error rate")
    dependencies: list[DependencySpec] = Field(default_factory=list)
    metrics: MetricsSpec | None = None
    prometheus: PrometheusSpec | None = None
    logs: LogsSpec = Field(default_factory=LogsSpec)
    postgres: PostgresSpec | None = None
    flags: list[FlagSpec] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    probes: list[str] | None = Field(None, description="limit to these probes; default all that apply")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="settings for plugin probes and actions, by the plugin's "
        "name; each checked at start-up by the plugin's own `settings` model (docs/plugins.md)")
    sweep_interval_s: float = Field(60, ge=1)

    @field_validator("dependencies")
    @classmethod
    def _unique_dependency_names(cls, value: list[DependencySpec]) -> list[DependencySpec]:
        names = [d.name for d in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dependency names must be unique, repeated: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _gitops_needs_repo(self) -> TargetSpec:
        if self.gitops is not None and self.deploy_repo is None:
            raise ValueError(f"gitops: {self.gitops} needs deploy_repo (the repository it reverts in)")
        return self

    def dependency(self, name: str) -> DependencySpec | None:
        return next((d for d in self.dependencies if d.name == name), None)
