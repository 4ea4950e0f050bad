"""What the runner hands a probe and the executor hands an action: clock, breakers, clients.

Probes and actions never build their own Kubernetes client or read the wall clock directly;
they take both from the context, which is how tests inject a fake apiserver and a fixed time.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.model.domain import Finding
from agent.model.errors import TemporaryError
from agent.model.lean_imports import load_pybreaker
from agent.model.redact import redact
from agent.model.targets import TargetSpec
from agent.model.tls import shared_tls

if TYPE_CHECKING:
    import pybreaker

    from agent.model.kube_http import KubeEndpoint


def utcnow() -> datetime:
    return datetime.now(UTC)


class CircuitOpenError(TemporaryError):
    """The breaker for an endpoint is open: we do not call it until its reset timeout passes."""

    code = "circuit_open"


@dataclass
class BreakerBoard:
    """One pybreaker breaker per guarded endpoint (URL, database host, API server), made on use.

    A dead dependency then costs one timeout per `fail_max` sweeps, not one per sweep. The board
    is an instance (never a class attribute) so each daemon and each test has its own.
    """

    fail_max: int = 3  # consecutive failures before the breaker opens
    reset_timeout_s: float = 60.0  # how long it stays open before one trial call
    _breakers: dict[str, pybreaker.CircuitBreaker] = field(default_factory=dict)

    def breaker(self, key: str) -> pybreaker.CircuitBreaker:
        pybreaker = load_pybreaker()
        key = redact(key)  # names reach /metrics labels: never a URL's userinfo or token
        if key not in self._breakers:
            self._breakers[key] = pybreaker.CircuitBreaker(
                fail_max=self.fail_max, reset_timeout=self.reset_timeout_s, name=key
            )
        return self._breakers[key]

    @contextlib.contextmanager
    def guard(self, key: str) -> Iterator[None]:
        """Run the block under `key`'s breaker; raise `CircuitOpenError` if it is open."""
        breaker = self.breaker(key)
        key = str(breaker.name)
        pybreaker = load_pybreaker()
        try:
            with breaker.calling():
                yield
        except pybreaker.CircuitBreakerError as e:
            cause = e.__context__ or e.__cause__
            if cause is not None and not isinstance(cause, pybreaker.CircuitBreakerError):
                raise cause from None  # the call that tripped the breaker: report the real error
            raise CircuitOpenError(
                f"circuit open for {key}: skipped after {self.fail_max} consecutive failures",
                delay=self.reset_timeout_s,
            ) from None

    def states(self) -> dict[str, str]:
        """Breaker name -> `closed`, `open` or `half-open`, for diagnose output and metrics."""
        return {key: str(b.current_state) for key, b in sorted(self._breakers.items())}


def _no_kube() -> Any:
    from agent.model.errors import PermanentError

    raise PermanentError("no Kubernetes API configured (no in-cluster config or kubeconfig)",
                         code="kube_unconfigured")


@dataclass
class ProbeContext:
    """Handed to `Probe.collect`. `kube()` returns a `kubernetes.client.ApiClient`, built lazily."""

    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    now: Callable[[], datetime] = utcnow
    timeout_s: float = 10.0
    kube: Callable[[], Any] = _no_kube
    # Where plain reads go (agent/model/kube_http.py); None: worked out from `kube()`'s config.
    kube_endpoint: Callable[[], Any] | None = None
    tls: Callable[[], ssl.SSLContext] = shared_tls
    log: Any = None
    # The alerts behind this diagnosis (Alertmanager JSON: labels, generatorURL, startsAt), so a
    # probe can look at what fired; empty for sweeps and the CLI.
    alerts: tuple[dict[str, Any], ...] = ()


    def endpoint(self) -> KubeEndpoint | None:
        """The `KubeEndpoint` the probes' plain GETs go to, or None when only the official
        client can authenticate (an exec plugin, an auth provider): they then go through it."""
        if self.kube_endpoint is not None:
            found: KubeEndpoint | None = self.kube_endpoint()
            return found
        from agent.model.kube_http import endpoint_of_configuration

        return endpoint_of_configuration(self.kube().configuration)


Reprobe = Callable[[TargetSpec, str], Awaitable[list[Finding]]]


async def _no_reprobe(target: TargetSpec, probe: str) -> list[Finding]:
    return []


@dataclass
class ActionContext:
    """Handed to an action. `limits` are the policy's blast-radius limits for this proposal;
    `reprobe(target, probe_name)` re-runs a probe so `verify` can check the findings are gone."""

    target: TargetSpec
    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    now: Callable[[], datetime] = utcnow
    kube: Callable[[], Any] = _no_kube
    limits: dict[str, Any] = field(default_factory=dict)
    reprobe: Reprobe = _no_reprobe
    actor: str = "hemostat"
    tls: Callable[[], ssl.SSLContext] = shared_tls
    log: Any = None
    # What the action answers for, for the words it leaves behind (a revert's commit message):
    # {"incident": id, "proposal": id, "approvers": [names]}.
    provenance: dict[str, Any] = field(default_factory=dict)
