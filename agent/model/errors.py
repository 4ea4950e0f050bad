"""Error types whose class decides what happens next.

`PermanentError` means retrying cannot help (wrong password, 403, unknown deployment);
`TemporaryError` carries the delay after which a retry may succeed (timeouts, 429, 5xx).
Every error has a stable `code` that the ledger records, so a timeline can be grepped.
"""

from __future__ import annotations


class HemostatError(Exception):
    """Base of every error Hemostat raises on purpose. `str(err)` is safe to log."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class PermanentError(HemostatError):
    """Retrying will not help; a human or a config change must."""

    code = "permanent"


class TemporaryError(HemostatError):
    """May succeed if retried after `delay` seconds."""

    code = "temporary"

    def __init__(self, message: str, *, delay: float = 5.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.delay = delay


class ConfigError(PermanentError):
    """A config, policy, tree or scenario file is wrong: names the file, the field and why."""

    code = "config"

    def __init__(self, source: str, field: str, reason: str) -> None:
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.field = field
        self.reason = reason
