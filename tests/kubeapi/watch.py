"""``?watch=true``: a stream of ADDED/MODIFIED/DELETED events after a resourceVersion.

Selector transitions are reported like the apiserver's watch cache does: an object that starts
matching arrives as ADDED, one that stops matching as DELETED. A resourceVersion older than the
retained history yields a single ``ERROR`` event carrying a 410 ``Expired`` Status.
``sendInitialEvents=true`` (the watch-list that kubectl 1.35's informers use instead of a
list) sends the current objects as ADDED, then the ``BOOKMARK`` annotated
``k8s.io/initial-events-end`` that tells the client the initial state is complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tests.kubeapi.api import Api, Request
from tests.kubeapi.errors import ApiError
from tests.kubeapi.selectors import Matcher
from tests.kubeapi.store import WatchEvent

Obj = dict[str, Any]
DEFAULT_TIMEOUT = 1800.0


def _in_namespace(obj: Obj, namespace: str | None) -> bool:
    return namespace is None or obj["metadata"].get("namespace") == namespace


def _translate(ev: WatchEvent, req: Request, matcher: Matcher) -> str | None:
    if not _in_namespace(ev.new, req.namespace):
        return None
    now = matcher(ev.new)
    before = ev.old is not None and matcher(ev.old)
    if ev.type == "DELETED":
        return "DELETED" if now else None
    if ev.type == "ADDED":
        return "ADDED" if now else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


def _start(api: Api, req: Request, matcher: Matcher) -> tuple[int, list[Obj]]:
    """The resourceVersion to follow from, and the synthetic ADDED events for a fresh watch."""
    raw = req.query.get("resourceVersion", "")
    initial_events = req.query.get("sendInitialEvents") == "true"
    with api.store.cond:
        if raw in ("", "0") or initial_events:
            current = [o for o in api.store.list_objects(req.rt.storage, req.namespace) if matcher(o)]
            added = [{"type": "ADDED", "object": api.render(o, req.rt)} for o in current]
            if initial_events:
                added.append(_initial_events_end(req, api.store.rv))
            return api.store.rv, added
        if not raw.isdigit():
            raise ApiError(400, f'invalid resource version "{raw}"', "BadRequest")
        api.store.events_after(int(raw), req.rt.storage)
        return int(raw), []


def _initial_events_end(req: Request, rv: int) -> Obj:
    return {"type": "BOOKMARK", "object": {
        "kind": req.rt.kind, "apiVersion": req.rt.api_version,
        "metadata": {"resourceVersion": str(rv),
                     "annotations": {"k8s.io/initial-events-end": "true"}}}}


def stream(api: Api, req: Request) -> Iterator[Obj]:
    """Yield watch events until ``timeoutSeconds`` elapses or the server stops."""
    matcher = api.matcher(req)
    deadline = time.monotonic() + float(req.query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    try:
        last, initial = _start(api, req, matcher)
    except ApiError as exc:
        if exc.code != 410:
            raise
        return iter([{"type": "ERROR", "object": exc.body()}])
    return _follow(api, req, matcher, last, initial, deadline)


def _follow(api: Api, req: Request, matcher: Matcher, last: int, initial: list[Obj],
            deadline: float) -> Iterator[Obj]:
    yield from initial
    while True:
        try:
            events = _wait_for_events(api, req, last, deadline)
        except ApiError as exc:
            yield {"type": "ERROR", "object": exc.body()}
            return
        if events is None:
            return
        for ev in events:
            last = ev.rv
            kind = _translate(ev, req, matcher)
            if kind is not None:
                yield {"type": kind, "object": api.render(ev.new, req.rt)}


def _wait_for_events(api: Api, req: Request, last: int, deadline: float
                     ) -> list[WatchEvent] | None:
    with api.store.cond:
        while True:
            events = api.store.events_after(last, req.rt.storage)
            remaining = deadline - time.monotonic()
            if events:
                return events
            if remaining <= 0 or api.store.closed:
                return None
            api.store.cond.wait(remaining)
