"""What `redact()`, `mask_url()` and the git ref check do to each kind of secret, as a table:
each row is a text a log line, an error or a finding could carry, and what must come out."""

from __future__ import annotations

import subprocess

import pytest

from agent.model.redact import redact
from agent.model.targets import check_ref_name
from agent.model.urls import endpoint, mask_url

REDACT = [
    # (what, text, expected)
    ("dsn password", "postgresql://hemostat:hunter2@db:5432/ledger", "postgresql://hemostat:***@db:5432/ledger"),
    ("key=value password", "password=s3cr3t host=db", "password=*** host=db"),
    ("json password", '{"user": "app", "password": "hunter2"}', '{"user": "app", "password": "***"}'),
    ("python repr password", "{'password': 'hunter2'}", "{'password': '***'}"),
    ("access_token in a query", "GET /health?access_token=abc123&b=1", "GET /health?access_token=***&b=1"),
    ("client_secret", "client_id=app&client_secret=xyz789", "client_id=app&client_secret=***"),
    ("aws secret env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=***"),
    ("api key header", "x-api-key: k1k2k3", "x-api-key: ***"),
    ("slack webhook", "posting to https://hooks.slack.com/services/T0001/B0002/XXXXyyyy failed",
     "posting to https://hooks.slack.com/*** failed"),
    ("basic auth header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: ***"),
    ("bearer auth header", "authorization: Bearer abc.def.ghi", "authorization: ***"),
    ("bare bearer token", "sent Bearer abc.def.ghi upstream", "sent Bearer *** upstream"),
    ("userinfo in an http url", "GET http://flaguser:flagpw@flags:8080/v1", "GET http://***@flags:8080/v1"),
    ("token without a password", "https://ghp_abc123@github.com/x.git", "https://***@github.com/x.git"),
    ("nothing secret", "idle_in_transaction_seconds=300 state=active", "idle_in_transaction_seconds=300 state=active"),
    ("a reference is not a secret", "secret env:PAYMENTS_TOKEN is not set", "secret env:PAYMENTS_TOKEN is not set"),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in REDACT], ids=[row[0] for row in REDACT])
def test_redact_masks_each_kind_of_secret(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    assert redact("the token was tok-4f2a9 in the body", ("tok-4f2a9",)) == "the token was *** in the body"


MASK_URL = [
    ("userinfo", "http://user:pass@flags.internal:8080/api?x=1", "http://flags.internal:8080/api?x=1"),
    ("sensitive params", "https://api.example.com/health?access_token=abc&region=eu&sig=zz&key=k",
     "https://api.example.com/health?access_token=***&region=eu&sig=***&key=***"),
    ("fragment", "https://status.example.com/#token=abc", "https://status.example.com/"),
    ("slack path", "https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/***"),
    ("plain", "https://payments.internal/health", "https://payments.internal/health"),
]


@pytest.mark.parametrize(("url", "expected"), [row[1:] for row in MASK_URL], ids=[row[0] for row in MASK_URL])
def test_mask_url_keeps_what_helps_and_hides_what_authenticates(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_endpoint_names_drop_userinfo_and_query() -> None:
    assert endpoint("http://u:p@flags:8080/v1/flags?token=t") == "http://flags:8080/v1/flags"


BRANCHES = ["main", "release/1.2", "feature/x-y_z", "v1.0", "--output=/tmp/pwned", "-b", "a..b",
            "x.lock", "feat/.hidden", "has space", "tilde~1", "caret^", "colon:x", "q?", "star*", "br[a",
            "back\\slash", "trailing/", "/leading", "dot.", "at@{1}", "@", "double//slash", "tab\tx"]


STRICTER = {"@"}  # git reads a lone "@" as HEAD; as a deploy branch it is a mistake


@pytest.mark.parametrize("name", BRANCHES)
def test_branch_names_are_judged_as_git_judges_them(name: str) -> None:
    """Our rule agrees with `git check-ref-format --branch` (which also refuses a leading '-')."""
    git = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, check=False)
    try:
        check_ref_name(name)
        ours = True
    except ValueError:
        ours = False
    assert ours == (git.returncode == 0 and name not in STRICTER), git.stderr
