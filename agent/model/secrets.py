"""A secret by reference (`{env: NAME}` or `{file: PATH}`), never an inline value: the one field
type every config model uses for a DSN, a token or a URL that carries one. Imported by the
target and config models and by `agent.model.urls`; imports only errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from agent.model.errors import PermanentError


class SecretRef(BaseModel):
    """A secret by reference: exactly one of an environment variable or a file (a mounted Secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_values(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("secrets are given by reference only: use {env: NAME} or {file: PATH}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def resolve(self) -> str:
        """Read the secret now. The error names the reference, never a value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise PermanentError(f"secret {self.describe()} is not set", code="secret_missing")
            return _remembered(value)
        assert self.file is not None
        try:
            return _remembered(self.file.read_text().strip())
        except OSError as e:
            raise PermanentError(
                f"secret {self.describe()} cannot be read: {e.strerror}", code="secret_missing"
            ) from e


def _remembered(value: str) -> str:
    """A secret just read: `redact` masks it (and, for a URL or DSN, its parts) from now on."""
    from agent.model.redact import remember, remember_url

    if "://" in value:
        remember_url(value)
    else:
        remember(value)
    return value
