"""The process's one TLS context for HTTPS clients (probes, actions, the Kubernetes reader).
Imports nothing of Hemostat, so the context, the Kubernetes reader and the start-up helpers all
take it from here."""

from __future__ import annotations

import functools
import ssl
import threading

_TLS_LOCK = threading.Lock()


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One TLS context per process. Building one loads the whole CA bundle (~20 ms of CPU and
    ~0.7 MB); doing that per HTTP client made a 1,000-target sweep spend 80% of its time here.
    Locked: `warm_tls` may be building it in a thread when the first client asks."""
    with _TLS_LOCK:
        return _build_tls()


@functools.cache
def _build_tls() -> ssl.SSLContext:
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
