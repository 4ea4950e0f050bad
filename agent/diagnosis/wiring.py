"""Start-up wiring: config, plugins, decision tree and policy, loaded and cross-checked once.

Everything that can be wrong with the setup is found here, before any probe runs: an unknown
action in the policy or tree, a plugin that fails to import, a malformed file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.diagnosis.plugins import add_fragments, check_settings
from agent.diagnosis.registry import Registry
from agent.model.config import Config
from agent.model.context import BreakerBoard
from policies.gate import Gate
from policies.model import Policy, bundled_policy_path, load_policy
from policies.tree import BUNDLED_TREE, Tree, load_tree


@dataclass
class App:
    """What every command and the daemon work with, built once per process."""

    config: Config
    registry: Registry
    tree: Tree
    policy: Policy
    policy_path: Path
    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    kube: Callable[[], Any] | None = None
    kube_endpoint: Callable[[], Any] | None = None

    @property
    def gate(self) -> Gate:
        return Gate(self.policy)

    def kube_provider(self) -> Callable[[], Any]:
        """The lazily built Kubernetes client (tests set `kube` to a fake apiserver's)."""
        if self.kube is None:  # from the config, and the probes' plain reads with it
            self.kube = kube_factory(self.config)
            self.kube_endpoint = endpoint_factory(self.config, self.kube)
        return self.kube

    def kube_endpoint_provider(self) -> Callable[[], Any] | None:
        """Where the probes' plain reads go: from the in-cluster files or the kubeconfig, read
        without importing the official client. None when tests set `kube`: the probe context
        then takes the endpoint from that client's configuration."""
        self.kube_provider()
        return self.kube_endpoint


def build_app(config: Config, registry: Registry | None = None,
              policy_override: Path | None = None) -> App:
    registry = registry if registry is not None else Registry.discover()
    policy_path = policy_override or config.policy or bundled_policy_path("default")
    policy = load_policy(policy_path, registry.actions)
    tree = add_fragments(load_tree(config.tree or BUNDLED_TREE, registry.actions), registry)
    for target in config.targets:
        for name in target.probes or ():
            registry.probe(name)  # an unknown probe name fails here, not mid-sweep
    check_settings(config, registry)  # plugins' own settings, by their own models
    return App(config, registry, tree, policy, policy_path)


def kube_factory(config: Config) -> Callable[[], Any]:
    """A lazily built, cached Kubernetes ApiClient: in-cluster config, else kubeconfig."""
    cache: dict[str, Any] = {}
    lock = threading.Lock()  # probes warm it from worker threads, possibly at once

    def make() -> Any:
        with lock:
            if "client" not in cache:
                cache["client"] = _load_kube(config)
            return cache["client"]

    return make


def endpoint_factory(config: Config, kube: Callable[[], Any]) -> Callable[[], Any]:
    """The `KubeEndpoint` for the probes' reads, worked out once: from the config files when
    their credentials are static, else from the official client's configuration (None when
    that needs the client itself, e.g. an exec plugin's expiring token)."""
    cache: dict[str, Any] = {}

    def make() -> Any:
        if "endpoint" not in cache:
            from agent.model.kube_http import endpoint_for, endpoint_of_configuration

            kubeconfig = config.kubernetes.kubeconfig
            found = endpoint_for(str(kubeconfig) if kubeconfig else None, config.kubernetes.context)
            if found is None:
                found = endpoint_of_configuration(kube().configuration)
            cache["endpoint"] = found
        return cache["endpoint"]

    return make


def _load_kube(config: Config) -> Any:
    from kubernetes import client
    from kubernetes import config as kconfig

    from agent.model import PermanentError

    try:
        kconfig.load_incluster_config()  # type: ignore[no-untyped-call]
    except kconfig.ConfigException:
        try:
            kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(config.kubernetes.kubeconfig) if config.kubernetes.kubeconfig else None,
                context=config.kubernetes.context,
            )
        except (kconfig.ConfigException, OSError) as e:
            raise PermanentError(f"no Kubernetes API configured: {e}", code="kube_unconfigured") from e
    configuration = client.Configuration.get_default_copy()
    # urllib3 would silently retry 429/503 and read timeouts 3 times; our breakers and the
    # executor's bounded retries decide that instead, so a hung apiserver costs one timeout.
    configuration.retries = False
    return with_deadline(client.ApiClient(configuration), config.kubernetes.request_timeout_s)


def with_deadline(api: Any, timeout_s: float) -> Any:
    """`api` with `kubernetes.request_timeout_s` as the deadline of every call that sets none of
    its own (the official client's default is to wait forever: a hung apiserver held threads)."""
    rest = api.rest_client
    request = rest.request

    def bounded(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return request(*args, _request_timeout=_request_timeout or timeout_s, **kwargs)

    rest.request = bounded
    return api


async def validate_live(app: App, source: str, only: str | None = None) -> None:
    """Let each probe check its part of the config against the system it asks (the PromQL of
    `prometheus`, by Prometheus's own parser); the first problem is a ConfigError naming the
    file and the field. A probe without a `validate` method has nothing to check."""
    import asyncio

    from agent.model import ConfigError
    from agent.model.context import ProbeContext

    ctx = ProbeContext(breakers=app.breakers, timeout_s=app.config.probe_timeout_s)
    checks, where = [], []
    for index, target in enumerate(app.config.targets):
        if only is not None and target.name != only:
            continue
        for reg in app.registry.probes.values():
            validate = getattr(reg.plugin, "validate", None)
            if validate is not None and reg.plugin.applies_to(target):
                checks.append(validate(target, ctx))
                where.append(index)
    for index, problems in zip(where, await asyncio.gather(*checks), strict=True):
        for field_name, message in problems:
            raise ConfigError(source, f"targets.{index}.{field_name}", message)
