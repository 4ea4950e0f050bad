"""A prototype of the fix the scale profile points at, measured in bench/ only (agent/ and
probes/ are not changed from here).

The profile: every `http-health` collect builds a new `httpx.AsyncClient`, and each client builds a
fresh TLS context and loads the whole CA bundle into it (`SSLContext.load_verify_locations`):
about 20 ms of CPU and 0.7 MB of memory per client, on the event loop, even for plain-HTTP
endpoints. The fix: build the TLS context once per process and hand it to every client
(`verify=context`). This probe is `http-health` with exactly that change, under the same name.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import Any

import httpx

from agent.diagnosis.registry import Registry
from agent.model import TargetSpec
from agent.model.context import ProbeContext
from probes import http_health


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One verified TLS context per process (the CA bundle is parsed once)."""
    return httpx.create_ssl_context()


class SharedTlsHttpHealthProbe(http_health.HttpHealthProbe):
    async def collect(self, target: TargetSpec, ctx: ProbeContext) -> dict[str, Any]:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=shared_tls()) as client:
            checks = await asyncio.gather(*(http_health._check(client, dep, ctx) for dep in target.dependencies))
        return {"checks": list(checks),
                "breakers": {k: v for k, v in ctx.breakers.states().items() if k.startswith("http:")}}


def with_shared_tls(registry: Registry) -> Registry:
    """The same registry, with `http-health` swapped for the prototype."""
    out = Registry(dict(registry.probes), dict(registry.actions))
    del out.probes["http-health"]
    out.add_probe(SharedTlsHttpHealthProbe(), "bench/prototype.py (shared TLS context)")
    return out
