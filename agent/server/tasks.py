"""Small pieces of the daemon's task plumbing: naming a scheduled coroutine (and keeping one
failure from taking the daemon down), and warming the Kubernetes client off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import structlog

from agent.diagnosis.wiring import App
from agent.model import HemostatError

log = structlog.get_logger("hemostat.daemon")


async def named(coro: Awaitable[Any], name: str) -> Any:
    task = asyncio.current_task()
    if task is not None:
        task.set_name(name)
    try:
        return await coro
    except Exception as e:  # one bad alert must not take the daemon down
        log.error("task failed", task=name, error=f"{type(e).__name__}: {e}")
        return None


def warm_kube(app: App) -> None:
    """Import the Kubernetes client and load its config now, in a worker thread: doing it on
    first use would stall the event loop (and every probe and webhook) for half a second."""
    try:
        import kubernetes.client  # noqa: F401

        app.kube_provider()()
    except HemostatError as e:
        log.warning("no Kubernetes API; Kubernetes probes and actions will report it", error=str(e))
