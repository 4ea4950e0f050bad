"""``pods/log``: per-container log lines with timestamps, answered like the kubelet would."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.kubeapi.errors import bad_request

Line = tuple[datetime, str]
LogKey = tuple[str, str, str, bool]


def _container_names(pod: dict[str, Any], field: str) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get(field) or []]


def pick_container(pod: dict[str, Any], requested: str | None) -> str:
    """The container a log request refers to; the apiserver's 400s when it is ambiguous."""
    name = pod["metadata"]["name"]
    containers = _container_names(pod, "containers")
    init = _container_names(pod, "initContainers")
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = (f"a container name must be specified for pod {name}, "
                   f"choose one of: [{' '.join(containers)}]")
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise bad_request(message)
    if requested not in containers + init + _container_names(pod, "ephemeralContainers"):
        raise bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _waiting_reason(pod: dict[str, Any], container: str) -> str | None:
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (
            status.get("initContainerStatuses") or []):
        if entry.get("name") == container and "waiting" in (entry.get("state") or {}):
            return str(entry["state"]["waiting"].get("reason", "ContainerCreating"))
    return None


def format_line(stamp: datetime, text: str, timestamps: bool) -> str:
    if not timestamps:
        return text + "\n"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z " + text + "\n"


class PodLogs:
    """Log lines keyed by (namespace, pod, container, previous)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._lines: dict[LogKey, list[Line]] = {}

    def wait(self, timeout_s: float) -> None:
        """Until a log is set, or `timeout_s` (for followers)."""
        with self._changed:
            self._changed.wait(timeout_s)

    def set(self, key: LogKey, text: str, stamps: list[datetime] | None) -> None:
        lines = text.splitlines()
        if stamps is None:
            now = datetime.now(UTC)
            stamps = [now] * len(lines)
        if len(stamps) != len(lines):
            raise ValueError(f"{len(lines)} log lines but {len(stamps)} timestamps")
        aware = [s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps]
        with self._lock:
            self._lines[key] = list(zip(aware, lines, strict=True))
            self._changed.notify_all()

    def share(self, key: LogKey, like: LogKey) -> None:
        """Give `key` the very lines of `like` (one copy in memory): for log storms."""
        with self._lock:
            self._lines[key] = self._lines[like]

    def read(self, pod: dict[str, Any], query: dict[str, str]) -> str:
        container = pick_container(pod, query.get("container"))
        ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
        previous = query.get("previous") in ("true", "1")
        with self._lock:
            lines = self._lines.get((ns, name, container, previous))
        if lines is None and previous:
            raise bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found')
        if lines is None and (reason := _waiting_reason(pod, container)):
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return self._render(lines or [], query)

    @staticmethod
    def _render(lines: list[Line], query: dict[str, str]) -> str:
        if "sinceSeconds" in query:
            cutoff = datetime.now(UTC) - timedelta(seconds=int(query["sinceSeconds"]))
            lines = [line for line in lines if line[0] >= cutoff]
        if "tailLines" in query:
            tail = int(query["tailLines"])
            lines = lines[-tail:] if tail > 0 else []
        timestamps = query.get("timestamps") in ("true", "1")
        text = "".join(format_line(stamp, line, timestamps) for stamp, line in lines)
        if "limitBytes" in query:
            text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
        return text
