"""Finding the lines of a buffer that match any of a set of patterns, at close to grep's speed.

Hyperscan (Intel's multi-pattern engine, on PyPI as `hyperscan`) scans a whole buffer for the
alternation of the patterns and reports where matches end; the lines around those ends are the
matching lines. Measured on this project's bench (bench/logs.py, docs/benchmarks.md) it beat
RE2's set and `finditer` and Python's `re` on the same buffer by 4-10x. Where Hyperscan is not
installed, or cannot compile a pattern (backreferences, lookaround), or a pattern's meaning
would change (anchors, which here mean the line's text after its timestamp), `compile_scanner`
returns None and the caller falls back to Python's `re` line by line.

Hyperscan reads bytes with ASCII classes (as `LC_ALL=C grep` does); a chunk that is not ASCII,
with patterns whose classes are Unicode-aware in Python (`\\w`, `\\b`, `\\d`, `\\s`, case
folding), goes to the fallback too, so the answer never depends on which engine ran.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_ANCHORS = re.compile(r"(?<![\\\[])\^|(?<!\\)\$|\\[AZz]")  # line anchors mean "the text after the stamp"
_UNICODE_AWARE = re.compile(r"\\[wWbBdDsS]|\(\?[a-zA-Z]*i")


DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
Keys = tuple[list[bytes], list[int]]  # per matching line: its key (digits as `0`), and its end


class Scanner:
    """The matching lines of a block of whole lines (each ending in a newline), as keys."""

    def __init__(self, database: Any, unicode_aware: bool) -> None:
        self._db = database
        self.unicode_aware = unicode_aware

    def handles(self, block: bytes) -> bool:
        return not self.unicode_aware or block.isascii()

    def keys(self, block: bytes) -> Keys:
        """One callback per matching line (the pattern runs to the newline, so Hyperscan reports
        each line's end once however many matches it holds); the callback only notes the end,
        the keys are cut in one comprehension."""
        ends: list[int] = []
        note = ends.append
        self._db.scan(block, match_event_handler=lambda _id, _from, end, _flags, _ctx: note(end))
        rfind = block.rfind
        keys = [block[rfind(b"\n", 0, end - 1) + 1:end - 1].translate(DIGITS) for end in ends]
        return exact_hex(block, keys, ends), ends


def exact_hex(block: bytes, keys: list[bytes], ends: list[int]) -> list[bytes]:
    """Masking digits turns `5x1f` into `0x1f`, which a signature reads as hex: such lines
    (rare) keep their own text as key."""
    if not any(b"0x" in key or b"0X" in key for key in set(keys)):
        return keys
    return [block[block.rfind(b"\n", 0, end - 1) + 1:end - 1] if b"0x" in key or b"0X" in key else key
            for key, end in zip(keys, ends, strict=True)]


@functools.lru_cache(maxsize=32)
def compile_scanner(patterns: tuple[str, ...], timestamped: bool) -> Scanner | None:
    """A Hyperscan scanner for the alternation of `patterns`, or None (use `re`). On a stamped
    line (`<stamp> <text>`) a match must lie in the text: the pattern says so itself."""
    if any(_ANCHORS.search(p) for p in patterns) or not all(p.isascii() for p in patterns):
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    alternation = "|".join(f"(?:{p})" for p in patterns)
    line = (f"^[^ \\n]* [^\\n]*(?:{alternation})[^\\n]*\\n" if timestamped
            else f"(?:{alternation})[^\\n]*\\n")
    database = hyperscan.Database()
    try:
        database.compile(expressions=[line.encode()], ids=[0], elements=1,
                         flags=[hyperscan.HS_FLAG_MULTILINE])
    except hyperscan.error:
        return None  # a construct Hyperscan does not have: `re` will do it
    return Scanner(database, any(_UNICODE_AWARE.search(p) for p in patterns))


def split_stamp(line: bytes, timestamped: bool) -> tuple[str | None, str]:
    """(stamp, text) of one line, decoded."""
    if not timestamped:
        return None, line.decode(errors="replace")
    stamp, _, text = line.partition(b" ")
    return stamp.decode(errors="replace"), text.decode(errors="replace")
