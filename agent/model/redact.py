"""Masking and truncation applied before anything reaches logs, findings or the ledger."""

from __future__ import annotations

import re

# A key whose value is a secret: any key containing one of these words (access_token,
# client_secret, AWS_SECRET_ACCESS_KEY, x-api-key, db_password), or exactly one of the short ones.
SECRET_KEY = (r"[\w.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credential|signature"
              r"|private[_-]?key|session[_-]?id)[\w.-]*|key|sig|auth|bearer")
_AUTHORIZATION = re.compile(  # the whole credential, scheme and all: "Basic dXNl..." leaks either way
    r"(?P<key>\b(?:proxy-)?authorization[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<val>(?:(?:basic|bearer|digest|token|negotiate|apikey)\s+)?[^\s\"'&,;]+)", re.I)
_BEARER = re.compile(r"(?P<key>\bBearer\s+)(?P<val>[A-Za-z0-9._~+/=-]+)", re.I)
_SLACK_HOOK = re.compile(r"(?P<key>https?://hooks\.slack(?:-gov)?\.com/)(?P<val>[^\s\"'<>]+)", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>https?://)(?P<userinfo>[^/@\s\"'<>]+)@", re.I)
_DSN_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_SECRET = re.compile(
    rf"(?P<key>(?<![\w.-])[\"']?(?:{SECRET_KEY})[\"']?\s*[=:]\s*)"
    r"(?P<val>\"[^\"]*\"|'[^']*'|[^\s&,;\"'}]+)",
    re.I,
)
MASK = "***"


def redact_dsn(dsn: str) -> str:
    """`postgresql://u:pw@h/db` -> `postgresql://u:***@h/db`; key=value DSNs lose `password=`."""
    out = _DSN_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", dsn)
    return _KV_SECRET.sub(_masked_value, out)


def _masked_value(m: re.Match[str]) -> str:
    value = m["val"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{m['key']}{quote}{MASK}{quote}"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask credentials in free text: Authorization headers (any scheme), bearer tokens, Slack
    webhook URLs, userinfo in http(s) URLs, DSN passwords, `key=value` / `"key": "value"` pairs
    whose key names a secret (password, access_token, client_secret, AWS_SECRET_ACCESS_KEY, ...),
    and any known secret value."""
    out = _AUTHORIZATION.sub(lambda m: f"{m['key']}{MASK}", text)
    out = _BEARER.sub(lambda m: f"{m['key']}{MASK}", out)
    out = _SLACK_HOOK.sub(lambda m: f"{m['key']}{MASK}", out)
    out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", out)
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
