"""Masking and truncation applied before anything reaches logs, findings or the ledger."""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, unquote, urlsplit

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
MIN_KNOWN = 6  # a remembered secret shorter than this is not masked in free text (too common)
_KNOWN: set[str] = set()  # secret values read from references in this process (`remember`)
_KNOWN_LOCK = threading.Lock()


def remember(*values: str) -> None:
    """Values read from a secret reference: `redact` masks them wherever they appear, so a secret
    given by reference stays a reference in every output, however it got there (an error
    message quoting a URL, a probe's evidence, a log line)."""
    with _KNOWN_LOCK:
        _KNOWN.update(v for v in values if len(v) >= MIN_KNOWN)


def remember_url(url: str) -> None:
    """A URL read from a reference: the whole of it, each path segment or query value that looks
    like a token (8+ characters mixing letters and digits, or 20+), else its whole path (a token
    may live there: `/hooks/<token>`), and its password."""
    parts = urlsplit(url)
    segments = [seg for seg in (unquote(s) for s in parts.path.split("/")) if _token_like(seg)]
    whole_path = parts.path if not segments and parts.path.count("/") > 1 else ""  # no token seen
    pieces = [url, whole_path, *segments, *(v for _, v in parse_qsl(parts.query) if _token_like(v))]
    remember(*pieces, unquote(parts.password or ""))


def _token_like(value: str) -> bool:
    return len(value) >= 20 or (len(value) >= 8 and any(c.isdigit() for c in value)
                                and any(c.isalpha() for c in value))


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
    `secrets`, and every value read from a secret reference in this process (`remember`)."""
    out = _AUTHORIZATION.sub(lambda m: f"{m['key']}{MASK}", text)
    out = _BEARER.sub(lambda m: f"{m['key']}{MASK}", out)
    out = _SLACK_HOOK.sub(lambda m: f"{m['key']}{MASK}", out)
    out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", out)
    out = redact_dsn(out)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    with _KNOWN_LOCK:
        known = sorted(_KNOWN, key=len, reverse=True)  # the longest first: a URL before its path
    for secret in known:
        if secret in out:
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
