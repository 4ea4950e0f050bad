"""Start-up and shut-down cost of the `hemostat` process that buys it nothing.

pybreaker imports redis (about 45 ms of CPU, every `hemostat` command) for one class,
`CircuitRedisStorage`, which keeps a breaker's state in Redis. Hemostat's own breakers live in
memory (`BreakerBoard`), and its `circuit-break` action writes pybreaker's Redis keys with its
own client, so the `hemostat` process imports pybreaker with that storage switched off.
Only `main()` (the console script) does this; a process that imports Hemostat as a library,
such as the test suite or an app using `CircuitRedisStorage` itself, gets pybreaker untouched.

Building the process's TLS context (`shared_tls`: parsing the CA bundle, ~15 ms) releases the
GIL, so `warm_tls` does it on another core while the command loads its config and plugins.

At the end of a command the interpreter's own teardown (every module and object freed one by
one) took 60-90 ms of a one-shot `hemostat diagnose`; `exit_now` runs the exit handlers,
flushes the output and ends the process without it, once no other thread is left running.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from types import ModuleType

_WITHOUT_REDIS = False  # set by `pybreaker_without_redis()`, i.e. in the `hemostat` process


def pybreaker_without_redis() -> None:
    """From now on, `load_pybreaker` imports pybreaker as if redis were absent (its
    `HAS_REDIS_SUPPORT` is then False), unless pybreaker or redis is already loaded by then.
    redis stays importable for everything else."""
    global _WITHOUT_REDIS
    _WITHOUT_REDIS = True


def load_pybreaker() -> ModuleType:
    """pybreaker, imported on first use (a command that guards no call never pays for it)."""
    module = sys.modules.get("pybreaker")
    if module is not None:
        return module
    hide = _WITHOUT_REDIS and "redis" not in sys.modules
    if hide:
        sys.modules["redis"] = None  # type: ignore[assignment]  # `import redis` raises ImportError
    try:
        import pybreaker
    finally:
        if hide:
            del sys.modules["redis"]
    return pybreaker


def exit_now(code: object) -> None:
    """End the process with `code` (as `sys.exit` reads it) after the atexit handlers and a
    flush, skipping the interpreter's teardown. With another thread still running, exit the
    usual way, which waits for it."""
    if threading.active_count() > 1:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (`| head`), or a closed stream
        status = status or 120  # what CPython exits with when the final flush fails
    os._exit(status)


def warm_tls() -> None:
    """Start building the shared TLS context in a background thread (the first HTTP client
    then finds it ready)."""
    from agent.model.tls import shared_tls

    threading.Thread(target=shared_tls, name="warm-tls", daemon=True).start()
