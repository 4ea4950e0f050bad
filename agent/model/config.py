"""`hemostat.yaml`: the user's config, validated at load with messages that name file and field.

Loaded once at start-up (CLI command or daemon); a config that fails here stops the process
before any probe runs, so nothing is discovered mid-incident.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.model import ConfigError, SecretRef, TargetSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    """Where the ledger lives: embedded SQLite by default, PostgreSQL for a cluster."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: Path = Path("hemostat-ledger.db")
    dsn: SecretRef | None = None
    seal_key: SecretRef | None = Field(
        None, description="a key the ledger's database roles never see: the daemon seals the "
                          "approvals it records with it, and executes only sealed ones (or ones "
                          "approvers made with their own PostgreSQL login); agent.ledger.binding")

    @model_validator(mode="after")
    def _postgres_needs_dsn(self) -> StoreConfig:
        if self.backend == "postgres" and self.dsn is None:
            raise ValueError("backend 'postgres' needs 'dsn' ({env: NAME} or {file: PATH})")
        return self


class IntakeConfig(_Strict):
    """The Alertmanager webhook receiver."""

    listen: str = "127.0.0.1:9095"
    webhook: bool = Field(True, description="false: no Alertmanager intake; the port serves "
                          "/metrics and the health checks only")
    token: SecretRef | None = None
    max_body_bytes: int = Field(1 << 20, gt=0)
    header_timeout_s: float = Field(10.0, gt=0, description="to send a request's head (and keep-alive idle)")
    body_timeout_s: float = Field(10.0, gt=0, description="to send the body after the head; 408 past it")
    max_connections: int = Field(256, ge=1, description="open connections; one more gets 429")
    max_inflight: int = Field(32, ge=1, description="webhook requests handled at once; more get 429 "
                              "(the API, Slack and /metrics have budgets of their own)")
    target_labels: list[str] = Field(
        default_factory=lambda: ["hemostat_target", "target", "deployment", "service", "app"],
        description="alert labels tried in order to find the target's name",
    )


class NotifierConfig(_Strict):
    type: Literal["slack", "webhook", "stdout"]
    url: SecretRef | None = None
    timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _url_for_http(self) -> NotifierConfig:
        if self.type != "stdout" and self.url is None:
            raise ValueError(f"notifier '{self.type}' needs 'url' ({{env: NAME}} or {{file: PATH}})")
        return self


class SlackUser(_Strict):
    """Who a Slack user is for the policy when they press Approve / Reject."""

    subject: str = Field(min_length=1, description="the stable name approvals are counted by")
    name: str = ""
    groups: list[str] = Field(default_factory=list, description="matched by approvers.groups")


class SlackConfig(_Strict):
    """Slack interactivity: Approve / Reject on status updates, verified with the app's signing
    secret; only the Slack users listed in `users` may decide (docs/slack.md)."""

    signing_secret: SecretRef
    users: dict[str, SlackUser] = Field(default_factory=dict, description="Slack user ID -> identity")
    listen: str | None = Field(
        None, pattern=r"^[^:\s]*:[0-9]{1,5}$",
        description="host:port of a listener serving only /slack/interactions (and /healthz), so "
                    "the one port Slack must reach from the internet serves nothing else; unset: "
                    "the intake port serves it")

    @model_validator(mode="after")
    def _user_ids(self) -> SlackConfig:
        bad = [u for u in self.users if not re.fullmatch(r"[UW][A-Z0-9]{2,}", u)]
        if bad:
            raise ValueError(f"users: {bad[0]!r} is not a Slack user ID (like U024BE7LH; "
                             "Slack: profile, More, Copy member ID)")
        return self


class ApprovalApiConfig(_Strict):
    """The daemon's approval API (agent.server.approval_api): Kubernetes users approve as themselves."""

    enabled: bool = True
    audiences: list[str] = Field(
        default_factory=list,
        description="TokenReview audiences the engineers' tokens must carry; empty: the apiserver's")


class KubernetesConfig(_Strict):
    kubeconfig: Path | None = None
    context: str | None = None
    request_timeout_s: float = Field(10.0, gt=0)


class ExecutorConfig(_Strict):
    proposal_ttl_minutes: float = Field(30, gt=0, description="unapproved proposals expire")
    verify_timeout_s: float = Field(120, gt=0)
    claim_lease_s: float = Field(
        60, gt=0, description="an execution may run this long; a new leader reconciles an "
        "interrupted one only after its claim is this old (plus the action's settle_s)")
    status_update_minutes: float = Field(30, gt=0, description="cadence while an incident is open")
    symptom_settle_s: float = Field(
        120, ge=0, description="after an action's effect is in place, how long its symptom may take "
        "to go before the mitigation is 'not verified' (an action's own `symptom_settle_s` wins)")
    symptom_poll_s: float = Field(10, gt=0, description="how often the symptom is measured again meanwhile")
    pass_interval_s: float = Field(
        2.0, gt=0, description="the leader's executor pass when nothing wakes it (an approval, through "
        "the API, Slack or the auto policy, wakes it at once)")


class Config(_Strict):
    """The whole of `hemostat.yaml`."""

    targets: list[TargetSpec] = Field(default_factory=list)
    store: StoreConfig = Field(default_factory=StoreConfig)
    policy: Path | None = Field(None, description="policy file; default: the bundled default.yaml")
    tree: Path | None = Field(None, description="decision tree; default: the bundled tree.yaml")
    intake: IntakeConfig = Field(default_factory=IntakeConfig)
    notifiers: list[NotifierConfig] = Field(default_factory=lambda: [NotifierConfig(type="stdout")])
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    slack: SlackConfig | None = Field(None, description="Approve / Reject buttons in Slack")
    approval_api: ApprovalApiConfig = Field(default_factory=ApprovalApiConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    roles: dict[Literal["incident_commander", "communications", "technical_lead"], str] = Field(
        default_factory=dict
    )
    identity: str = Field("hemostat", description="the daemon's name in the ledger")
    probe_timeout_s: float = Field(10.0, gt=0, le=300)
    sweeps: bool = Field(True, description="probe every target on its interval, not only on alerts")
    max_concurrent_sweeps: int = Field(
        16, ge=1, le=1000,
        description="targets swept at once; more queue, so a busy loop never inflates latencies")

    @model_validator(mode="after")
    def _unique_targets(self) -> Config:
        names = [t.name for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique, repeated: {', '.join(dupes)}")
        return self

    def target(self, name: str) -> TargetSpec:
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none configured"
        raise ConfigError("config", "targets", f"no target named {name!r} (known: {known})")


def first_error(source: str, err: ValidationError) -> ConfigError:
    """Turn pydantic's error into one ConfigError naming the dotted field path."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = len(err.errors()) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return ConfigError(source, field, message)


def all_errors(err: ValidationError) -> list[tuple[str, str]]:
    """Every one of pydantic's errors as (dotted field path, message), for `config check`."""
    return [(".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))
            for e in err.errors()]


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a missing file or bad syntax is a ConfigError naming the file."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror}") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), where, f"not valid YAML: {getattr(e, 'problem', e)}") from e


def load_config(path: Path) -> Config:
    """Load and validate `hemostat.yaml`. Relative paths inside are taken from its folder."""
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "must be a mapping at the top level")
    try:
        config = Config.model_validate(anchor_paths(data, path.parent))
    except ValidationError as e:
        raise first_error(str(path), e) from None
    return config


def anchor_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve the few path-valued keys relative to the config file's folder."""
    out = dict(data)
    for key in ("policy", "tree"):
        if isinstance(out.get(key), str):
            out[key] = str(base / out[key])
    store = out.get("store") or {}
    if isinstance(store, dict):  # the default ledger file too lives beside the config
        out["store"] = {**store, "path": str(base / store.get("path", "hemostat-ledger.db"))}
    targets = out.get("targets")
    if isinstance(targets, list):
        out["targets"] = [_anchor_target(t, base) for t in targets]
    return out


def _anchor_target(target: Any, base: Path) -> Any:
    if not isinstance(target, dict):
        return target
    repo = target.get("deploy_repo")
    if isinstance(repo, dict) and isinstance(repo.get("path"), str):
        return {**target, "deploy_repo": {**repo, "path": str(base / repo["path"])}}
    return target
