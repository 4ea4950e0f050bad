"""Logs as apps write them: a JSON or logfmt line whose level says error counts as an error
signature under the default patterns, in any case; info lines that merely mention "error" do not."""

from __future__ import annotations

from agent.model.targets import LogsSpec
from probes.log_groups import group_errors

LINES = [
    '{"ts":"2026-12-08T00:01:00Z","level":"error","msg":"payment gateway refused"}',
    '{"ts":"2026-12-08T00:01:01Z","severity":"ERROR","message":"db pool exhausted"}',
    '{"ts":"2026-12-08T00:01:02Z","Level":"Fatal","msg":"cannot bind :8080"}',
    'ts=2026-12-08T00:01:03Z level=error msg="redis timeout"',
    'ts=2026-12-08T00:01:04Z lvl=CRITICAL msg="disk full"',
    '{"ts":"2026-12-08T00:01:05Z","level":"info","msg":"error budget at 98%"}',
    'ts=2026-12-08T00:01:06Z level=warn msg="slow request"',
]


def test_json_and_logfmt_error_levels_are_error_signatures() -> None:
    groups = group_errors(LINES, LogsSpec().patterns)
    examples = sorted(g["example"] for g in groups)
    assert len(examples) == 5
    assert not any("error budget" in e or "slow request" in e for e in examples)
    assert any("payment gateway refused" in e for e in examples)
    assert any('level=error msg="redis timeout"' in e for e in examples)
