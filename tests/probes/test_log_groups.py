"""Log grouping over whole buffers: Hyperscan and the `re` fallback give the same groups, however
the stream is cut into chunks, and folding keys never merges lines whose signatures differ."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import probes.log_groups as log_groups
from probes.log_groups import group_errors, group_file, group_stream, signature
from probes.log_scan import compile_scanner

STAMP = "2026-11-27T02:55:0{}.000Z "
PATTERNS = [r"\bERROR\b", r"\bFATAL\b", "Traceback"]
FRAGMENTS = ["ERROR", "FATAL", "Traceback", "ERRORS", " ", " ", "0x1f", "5x", "3f5823ab", "12", "-", ":",
             ".", "a", "é", "2026-11-27 02:55:01", "10.0.0.7"]
LINES = st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join), max_size=40)


def _stream(lines: list[str], cuts: list[int]) -> list[bytes]:
    data = "".join(line + "\n" for line in lines).encode()
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if data[a:b]]


def _text(line: str, stamped: bool) -> str:
    return line.partition(" ")[2] if stamped else line


def test_hyperscan_takes_the_default_patterns() -> None:
    assert compile_scanner(tuple(PATTERNS), True) is not None  # else the fast path is never tested


@given(LINES, st.lists(st.integers(min_value=0, max_value=2000), max_size=6), st.booleans())
def test_both_engines_and_any_chunking_give_the_same_groups(lines: list[str], cuts: list[int],
                                                            stamped: bool) -> None:
    lines = [STAMP.format(i % 10) + line if stamped else line for i, line in enumerate(lines)]
    expected = group_stream(_stream(lines, []), PATTERNS, stamped, engine="re")
    assert group_stream(_stream(lines, cuts), PATTERNS, stamped) == expected
    naive = [line for line in lines if any(re.search(p, _text(line, stamped)) for p in PATTERNS)]
    assert sum(g["count"] for g in expected) == len(naive)
    assert {g["signature"] for g in expected} == {signature(_text(line, stamped)) for line in naive}


def test_hex_ids_fold_but_a_digit_x_is_not_mistaken_for_0x() -> None:
    groups = group_errors(["ERROR order 3f58230824d2 rejected", "ERROR order a1b2c3d4e5f6 rejected",
                           "ERROR got 0x1f", "ERROR got 5x1f"], PATTERNS)
    assert [(g["signature"], g["count"]) for g in groups] == [
        ("ERROR order <hex> rejected", 2), ("ERROR got <hex>", 1), ("ERROR got <num>x<num>f", 1)]


def test_a_match_inside_the_timestamp_does_not_count() -> None:
    groups = group_errors(["2026-11-27T02:55:00Z fine", "2026-11-27T02:55:01Z ERROR at 27T02"],
                          [r"27T02"], timestamped=True)
    assert [(g["count"], g["first_seen"]) for g in groups] == [(1, "2026-11-27T02:55:01Z")]


def test_non_ascii_lines_give_the_same_answer_as_re() -> None:
    lines = ["ÉERROR voilà", "ERROR déjà 12", "ok ERROR"]
    assert group_errors(lines, PATTERNS) == group_stream(["\n".join(lines).encode()], PATTERNS, engine="re")
    assert sum(g["count"] for g in group_errors(lines, PATTERNS)) == 2  # `\b` is Unicode-aware, as in re


def test_a_file_is_grouped_in_bounded_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_groups, "CHUNK_BYTES", 64)
    path = tmp_path / "app.log"
    path.write_text("".join(f"{STAMP.format(i % 10)}ERROR payment {i} failed after {i * 7}ms\n"
                            for i in range(500)) + "2026-11-27T02:56:00.000Z FATAL last line, no newline")
    groups = group_file(path, PATTERNS, timestamped=True)
    assert [(g["signature"], g["count"]) for g in groups] == [
        ("ERROR payment <num> failed after <num>ms", 500), ("FATAL last line, no newline", 1)]
    assert groups[0]["first_seen"] == "2026-11-27T02:55:00.000Z"
    assert groups[0]["last_seen"] == "2026-11-27T02:55:09.000Z"
