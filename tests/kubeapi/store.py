"""In-memory object storage with a global resourceVersion counter and a bounded watch history."""

from __future__ import annotations

import copy
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.kubeapi.errors import expired

Obj = dict[str, Any]
Storage = tuple[str, str]
Key = tuple[str, str]


@dataclass(frozen=True)
class WatchEvent:
    """One committed change; ``old`` is the previous state (for selector transitions)."""

    rv: int
    type: str
    storage: Storage
    old: Obj | None
    new: Obj


class Store:
    """Thread-safe object map. Every write takes the next resourceVersion, like etcd."""

    def __init__(self, history_limit: int = 1000) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.objects: dict[Storage, dict[Key, Obj]] = {}
        self.rv = 1000
        self.history: deque[WatchEvent] = deque()
        self.history_limit = history_limit
        self.compacted_rv = self.rv
        self.closed = False

    def next_rv(self) -> str:
        with self.cond:
            self.rv += 1
            return str(self.rv)

    def get(self, storage: Storage, namespace: str, name: str) -> Obj | None:
        with self.cond:
            obj = self.objects.get(storage, {}).get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, storage: Storage, namespace: str | None = None) -> list[Obj]:
        with self.cond:
            items = sorted(self.objects.get(storage, {}).items())
            return [copy.deepcopy(o) for (ns, _), o in items if namespace in (None, ns)]

    def write(self, storage: Storage, obj: Obj, event_type: str) -> Obj:
        """Store ``obj`` under a fresh resourceVersion and record the watch event."""
        with self.cond:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            old = self.objects.get(storage, {}).get(key)
            meta["resourceVersion"] = self.next_rv()
            self.objects.setdefault(storage, {})[key] = copy.deepcopy(obj)
            self._record(WatchEvent(self.rv, event_type, storage, old, copy.deepcopy(obj)))
            return copy.deepcopy(obj)

    def remove(self, storage: Storage, namespace: str, name: str) -> Obj | None:
        with self.cond:
            old = self.objects.get(storage, {}).pop((namespace, name), None)
            if old is None:
                return None
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = self.next_rv()
            self._record(WatchEvent(self.rv, "DELETED", storage, old, copy.deepcopy(gone)))
            return gone

    def _record(self, event: WatchEvent) -> None:
        self.history.append(event)
        while len(self.history) > self.history_limit:
            self.compacted_rv = self.history.popleft().rv
        self.cond.notify_all()

    def compact(self) -> None:
        """Forget the watch history up to now, like an etcd compaction."""
        with self.cond:
            self.history.clear()
            self.compacted_rv = self.rv

    def events_after(self, rv: int, storage: Storage) -> list[WatchEvent]:
        with self.cond:
            if rv < self.compacted_rv:
                raise expired(f"too old resource version: {rv} ({self.compacted_rv + 1})")
            return [e for e in self.history if e.rv > rv and e.storage == storage]

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
