"""URLs in config, and how a URL may be shown.

A URL that carries a secret (a token in its query, `user:password@`, a Slack webhook path) is
given by reference, like any secret: `url: {env: PAYMENTS_HEALTH_URL}` or `{file: PATH}`; a plain
URL may stay inline. `UrlRef` is that field: `resolve()` reads the real URL when a request is
made; everything that shows or stores it (the ledger, `--record` files, logs, `/metrics` labels,
notifications) sees `mask_url` — no userinfo, sensitive query values masked — or, for a
reference, the reference itself. `endpoint` is the shortest safe name of a URL (no userinfo, no
query): breaker names and metric labels use it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)

from agent.model.errors import PermanentError
from agent.model.redact import MASK, SECRET_KEY, redact, remember_url

_SENSITIVE = re.compile(rf"^(?:{SECRET_KEY})$", re.I)
_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]


def endpoint(url: str) -> str:
    """scheme://host[:port]/path: what a breaker or a metric label may be named after."""
    parts = urlsplit(url)
    if "hooks.slack" in parts.netloc:
        return f"{parts.scheme}://{_netloc(url)}/{MASK}"
    return redact(f"{parts.scheme}://{_netloc(url)}{parts.path}")  # a referenced URL's path token


def mask_url(url: str) -> str:
    """The URL without userinfo or fragment, each sensitive query value (`token=`, `key=`,
    `access_token=`, `sig=`, ...) as ***, and a Slack webhook's secret path masked."""
    parts = urlsplit(url)
    pairs = [p.partition("=") for p in parts.query.split("&") if p] if parts.query else []
    query = "&".join(f"{k}{eq}{MASK if eq and _SENSITIVE.match(k) else v}" for k, eq, v in pairs)
    path = f"/{MASK}" if "hooks.slack" in parts.netloc else parts.path
    return redact(urlunsplit((parts.scheme, _netloc(url), path, query, "")))


class UrlRef(BaseModel):
    """A URL given inline (`url: https://...`) or by reference (`url: {env: NAME}` / `{file: PATH}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inline: HttpUrl | None = None
    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:  # checked here so an error names the field, not `url.inline`
            return {"inline": _HTTP_URL.validate_python(value)}
        except ValidationError as e:
            raise ValueError(f"Input should be a valid URL ({e.errors()[0]['msg']}), or "
                             "{env: NAME} / {file: PATH}") from None

    @model_validator(mode="after")
    def _exactly_one(self) -> UrlRef:
        if sum(x is not None for x in (self.inline, self.env, self.file)) != 1:
            raise ValueError("give a URL, or exactly one of {env: NAME} or {file: PATH}")
        return self

    @model_serializer
    def _shown(self) -> str | dict[str, str]:
        """Stored and recorded as the masked URL, or as the reference (never the secret)."""
        if self.inline is not None:
            return mask_url(str(self.inline))
        return {"env": self.env} if self.env is not None else {"file": str(self.file)}

    def describe(self) -> str:
        if self.inline is not None:
            return mask_url(str(self.inline))
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"

    def __str__(self) -> str:
        return self.describe()  # an accidental str() shows, it never leaks

    def resolve(self) -> str:
        """The real URL, read now. Errors name the reference, never the value."""
        if self.inline is not None:
            return str(self.inline)
        from agent.model.secrets import SecretRef

        value = SecretRef(env=self.env, file=self.file).resolve()  # remembered: redact() masks it
        try:
            url = str(_HTTP_URL.validate_python(value))
            remember_url(url)  # as normalised (a trailing /), path included
            return url
        except ValidationError:
            raise PermanentError(f"{self.describe()} does not hold an http(s) URL (not shown: it may "
                                 "hold a secret)", code="url_invalid") from None
