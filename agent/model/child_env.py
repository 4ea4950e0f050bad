"""The environment a child process (git, ssh) gets: what it needs to run, nothing of Hemostat's.

The daemon's environment holds its secrets by reference target (`HEMOSTAT_LEDGER_DSN`, tokens
named in `{env: NAME}`); a child inherited all of them (issue 23, L2), and a git hook, a
credential helper or an ssh `ProxyCommand` in a repository's config could read them. `child_env`
keeps only the variables a program needs to find itself, its home, its locale, its certificates
and its proxies, then adds `extra`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

KEPT = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
        "https_proxy", "no_proxy", "SSH_AUTH_SOCK", "GIT_SSL_CAINFO", "GIT_CONFIG_NOSYSTEM")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal environment for a child process, plus `extra`."""
    return {**{k: os.environ[k] for k in KEPT if k in os.environ}, **(extra or {})}
