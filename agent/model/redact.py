"""Masking and truncation applied before anything reaches logs, findings or the ledger."""

from __future__ import annotations

import re

_DSN_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key|authorization|bearer)\b\s*[=:]\s*)"
    r"(?P<val>\"[^\"]*\"|'[^']*'|[^\s&,;]+)",
    re.I,
)
_BEARER = re.compile(r"(?P<key>\bBearer\s+)(?P<val>[A-Za-z0-9._~+/=-]+)", re.I)
MASK = "***"


def redact_dsn(dsn: str) -> str:
    """`postgresql://u:pw@h/db` -> `postgresql://u:***@h/db`; key=value DSNs lose `password=`."""
    out = _DSN_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", dsn)
    return _KV_SECRET.sub(lambda m: f"{m['key']}{MASK}", out)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask DSN passwords, `password=...`-style pairs, bearer tokens and any known secret value."""
    out = _BEARER.sub(lambda m: f"{m['key']}{MASK}", text)  # before `authorization: <value>`
    out = redact_dsn(out)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    return out


def truncate(text: str, limit: int = 300) -> str:
    """Cut `text` to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more chars]"


def shorten(text: str, limit: int = 120) -> str:
    """Cut `text` at a space at or before `limit`, never inside a word or a class name
    (`com.stripe.net.APIConnectionException` stays whole or goes whole), marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return (text[:cut] if cut > 0 else text[:limit]).rstrip(" ,;:") + " …"


# SQL text: what a session ran, with every literal it carried replaced by `?`.
_SQL_TOKENS = re.compile(r"""
    (?P<ident>"(?:[^"]|"")*")
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|$))
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*|)\$.*?(?:\$(?P=tag)\$|$))
  | (?P<escaped>(?<!\w)[Ee]'(?:[^'\\]|\\.|'')*(?:'|$))
  | (?P<string>(?:(?<!\w)(?:[BbXxNn]|[Uu]&))?'(?:[^']|'')*(?:'|$))
  | (?P<number>(?<![\w$.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
""", re.X | re.S)


def mask_query(query: str | None, limit: int = 200) -> str:
    """Literals (strings, numbers, dollar-quoted bodies) -> `?`, comments dropped, then truncated."""
    if not query:
        return ""
    if query == "<insufficient privilege>":  # what pg_stat_activity shows without pg_read_all_stats
        return query

    def swap(m: re.Match[str]) -> str:
        return m.group() if m["ident"] else ("" if m["comment"] else "?")

    return truncate(" ".join(_SQL_TOKENS.sub(swap, query).split()), limit)
