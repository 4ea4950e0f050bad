"""Error lines grouped by signature, fast enough for a 200 MB log: the grouping half of `k8s-logs`.

A signature is the line with its variable parts (timestamps, uuids, IPs, hex, ids, numbers) as
placeholders, so a thousand "timeout after 3012 ms for order 81723" are one group with a count,
first/last seen, an example and (for stamped logs) its lines per minute, the timeline its
onset is read from (when its rate rose above its own background, probes/k8s_logs.py).

Whole buffers, not lines: `probes.log_scan` finds the matching lines of a chunk with Hyperscan;
their keys (digits masked, space-delimited hex ids folded, all in C over the joined lines) are
counted with `Counter` and dicts built from zips, so no Python code runs per line beyond one
callback; the costly `signature` regex then runs once per distinct key, not per line. Masking
digits never changes a signature (no token rule looks at a digit's value, except `0x`, whose
keys are kept exact). Without Hyperscan, or for patterns it cannot take, Python's `re` runs line
by line with the same answer. Chunks are bounded (`CHUNK_BYTES`), so memory is too.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from probes.log_scan import DIGITS, Keys, compile_scanner, exact_hex, split_stamp

Engine = Literal["auto", "re"]  # "re": Python's `re` only (the fallback, for comparison)
CHUNK_BYTES = 8 * 1024 * 1024  # read and scanned at once; a line longer than this is a chunk alone
# A space-delimited token of 6+ hex digits with a digit and a letter is always `<hex>` in a
# signature (nothing else can start at a space there): folding it keeps keys few for lines
# that differ only in a request or trace id. Keys are digit-masked, so a digit reads `0`.
_HEX_ID = re.compile(rb" (?=0*[a-fA-F])(?=[a-fA-F]*0)[0a-fA-F]{6,}(?=[ \n]|\Z)")

_TOKENS = re.compile(r"""
    (?P<ts>\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?
        |\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?)
  | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<ip>\b(?:\d{1,3}\.){3}\d{1,3}\b
        |(?<![\w:])(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{1,4}(?![\w:]))
  | (?P<hex>\b0[xX][0-9a-fA-F]+\b|\b(?=[a-fA-F]*\d)(?=\d*[a-fA-F])[0-9a-fA-F]{6,}\b)
  | (?P<id>\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{8,}\b)
  | (?P<num>\d+(?:\.\d+)?)
""", re.VERBOSE)
_PLACEHOLDER = {"ts": "<ts>", "uuid": "<uuid>", "ip": "<ip>", "hex": "<hex>", "id": "<id>", "num": "<num>"}


def _placeholder(match: re.Match[str]) -> str:
    return _PLACEHOLDER[match.lastgroup or "num"]


def signature(line: str) -> str:
    """The line with its variable parts (timestamps, uuids, IPs, hex, ids, numbers) as placeholders.

    `signature("timeout after 3012 ms from 10.0.0.7")` is `"timeout after <num> ms from <ip>"`.
    The result holds no digit, and `signature(signature(x)) == signature(x)`.
    """
    return _TOKENS.sub(_placeholder, line.strip())


_LITERAL = re.compile(r"[\w :=,-]{3,}", re.ASCII)


def _literal(pattern: str) -> str | None:
    """The text a simple pattern (`\\bERROR\\b`, `^FATAL`, `Traceback`) cannot match without."""
    core = pattern.removeprefix("^").removesuffix("$").replace(r"\b", "")
    return core if _LITERAL.fullmatch(core) else None


_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    """`(?i)error` -> `(?i:error)`: global flags are only allowed at the start of the alternation."""
    flags = _GLOBAL_FLAGS.match(pattern)
    if flags is None:
        return f"(?:{pattern})"
    return f"(?{flags[1]}:{pattern[flags.end():]})"


@functools.lru_cache(maxsize=32)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a line matches any pattern. One compiled alternation; when every pattern is a
    plain word, a literal-only prefilter runs first (a `\\b` in front turns off the regex engine's
    fast literal scan, and most lines match nothing), so a typical line costs one fast search."""
    search = re.compile("|".join(_scoped(p) for p in patterns)).search
    literals = [_literal(p) for p in patterns]
    if not all(literals):
        return lambda line: search(line) is not None
    quick = re.compile("|".join(re.escape(lit) for lit in literals if lit)).search
    return lambda line: quick(line) is not None and search(line) is not None


def _re_keys(block: bytes, patterns: Sequence[str], timestamped: bool) -> Keys:
    """The fallback: Python's `re`, line by line (the stamp is not searched)."""
    matches = _matcher(tuple(patterns))
    keys, ends, at = [], [], 0
    for raw in block.split(b"\n")[:-1]:
        at += len(raw) + 1
        line = raw.decode(errors="replace")
        if matches(line.partition(" ")[2] if timestamped else line):
            keys.append(raw.translate(DIGITS))
            ends.append(at)
    return exact_hex(block, keys, ends), ends


def _keys(chunk: bytes, patterns: Sequence[str], timestamped: bool, engine: Engine,
          whole_from: int = 0) -> Keys:
    """The matching whole lines of `chunk` from offset `whole_from` (a partial first line is
    someone else's), by Hyperscan where it answers alike; ends are offsets in `chunk`."""
    scanner = compile_scanner(tuple(patterns), timestamped) if engine == "auto" else None
    if scanner is None or not scanner.handles(chunk):
        keys, ends = _re_keys(chunk[whole_from:chunk.rfind(b"\n") + 1], patterns, timestamped)
        return keys, [end + whole_from for end in ends]
    keys, ends = scanner.keys(chunk)
    skip = bisect.bisect_right(ends, whole_from)  # lines ending in the partial first line
    return (keys[skip:], ends[skip:]) if skip else (keys, ends)


class _Table:
    """Matching lines counted by key, in order of first appearance: each key's count, first and
    last line and the position of the last. Per line only C runs (Counter, dict-of-zip); Python
    runs per distinct key, and `signature` once per folded key."""

    def __init__(self, timestamped: bool = False) -> None:
        self.rows: dict[bytes, list[Any]] = {}
        self.base = 0  # offset of the current block in the stream
        self.timestamped = timestamped
        self.minutes: dict[bytes, Counter[bytes]] = {}  # folded key -> lines per stamped minute

    def add(self, block: bytes, keys: list[bytes], ends: list[int]) -> None:
        first = dict(zip(reversed(keys), reversed(ends), strict=True))
        last = dict(zip(keys, ends, strict=True))
        counts = Counter(keys)
        # Folded all at once: one regex pass over the distinct keys, not a call per key.
        folds = _HEX_ID.sub(b" <hex>", b"\n".join(counts)).split(b"\n") if counts else []
        for (key, count), folded in zip(counts.items(), folds, strict=True):
            row = self.rows.get(folded)
            if row is None:
                self.rows[folded] = row = [0, _line(block, first[key]), None, -1]
            row[0] += count
            if self.base + last[key] > row[3]:
                row[2], row[3] = _line(block, last[key]), self.base + last[key]
        if self.timestamped and keys:
            self._per_minute(block, keys, ends, dict(zip(counts, folds, strict=True)))
        self.base += len(block)

    def _per_minute(self, block: bytes, keys: list[bytes], ends: list[int], fold: dict[bytes, bytes]) -> None:
        """Each line's minute (its stamp's first 16 bytes, `2026-11-27T02:41`), counted per
        folded key: the timeline a signature's onset is read from. The block's minute starts are
        found by binary search (a container's stamps do not go backwards); each line's minute is
        then one C-level bisect, with no Python code per line."""
        starts, labels = _minute_starts(block)
        at = map(bisect.bisect_right, itertools.repeat(starts), [e - 1 for e in ends])
        for (folded, index), n in Counter(zip(map(fold.__getitem__, keys), at, strict=True)).items():
            self.minutes.setdefault(folded, Counter())[labels[index - 1]] += n

    def groups(self, timestamped: bool) -> list[dict[str, Any]]:
        """Keys folded into signatures, most frequent first (ties: first seen first)."""
        by_signature: dict[str, list[Any]] = {}
        for folded, (count, first, last, order) in self.rows.items():
            stamp, text = split_stamp(first, timestamped)
            key = signature(text)
            group = by_signature.get(key)
            if group is None:
                by_signature[key] = group = [count, stamp, last, order, text, Counter()]
            else:
                group[0] += count
                if order > group[3]:
                    group[2], group[3] = last, order
            group[5].update(self.minutes.get(folded, {}))
        return [{"signature": key, "count": g[0], "first_seen": g[1],
                 "last_seen": split_stamp(g[2], timestamped)[0], "example": g[4],
                 **({"per_minute": {m.decode(errors="replace"): n for m, n in sorted(g[5].items())}}
                    if g[5] else {})}
                for key, g in sorted(by_signature.items(), key=lambda item: -item[1][0])]


def _minute_starts(block: bytes) -> tuple[list[int], list[bytes]]:
    """Offsets where a new stamped minute begins in `block`, and each one's minute."""
    starts: list[int] = []
    labels: list[bytes] = []
    pos, size = 0, len(block)
    while pos < size:
        label = block[pos:pos + 16]
        starts.append(pos)
        labels.append(label)
        lo, hi = pos, size  # lo: a line start in `label`'s minute; hi: the end, or a later minute's
        while True:
            after = block.find(b"\n", lo) + 1 or size  # the start of the line after lo's
            if after >= hi:
                break
            line = block.rfind(b"\n", after - 1, (after + hi) // 2) + 1
            if block[line:line + 16] == label:
                lo = line
            else:
                hi = line
        pos = hi
    return starts, labels


def _line(block: bytes, end: int) -> bytes:
    """The line whose newline is at `end - 1`."""
    return block[block.rfind(b"\n", 0, end - 1) + 1:end - 1]


def group_stream(chunks: Iterable[bytes], patterns: Sequence[str], timestamped: bool = False,
                 engine: Engine = "auto") -> list[dict[str, Any]]:
    """`group_errors` over a byte stream (a file read in `CHUNK_BYTES` pieces, a log body):
    memory is one chunk plus the table of distinct keys. Each chunk is scanned where it lies
    (no copy); only the line cut by a chunk's edge is glued and scanned on its own."""
    table, carry = _Table(timestamped), b""
    for chunk in chunks:
        first = chunk.find(b"\n") + 1
        if first == 0:
            carry += chunk
            continue
        glued = carry + chunk[:first]
        table.add(glued, *_keys(glued, patterns, timestamped, engine))
        keys, ends = _keys(chunk, patterns, timestamped, engine, whole_from=first)
        table.add(chunk, keys, ends)
        carry = chunk[chunk.rfind(b"\n") + 1:]
    if carry:
        table.add(carry + b"\n", *_keys(carry + b"\n", patterns, timestamped, engine))
    return table.groups(timestamped)


def group_file(path: str | os.PathLike[str], patterns: Sequence[str], timestamped: bool = False,
               engine: Engine = "auto") -> list[dict[str, Any]]:
    """`group_stream` of a file on disk, read in `CHUNK_BYTES` pieces."""
    with open(path, "rb") as f:
        return group_stream(iter(functools.partial(f.read, CHUNK_BYTES), b""), patterns, timestamped,
                            engine)


def group_errors(lines: Iterable[str], patterns: Sequence[str],
                 timestamped: bool = False) -> list[dict[str, Any]]:
    """Lines matching any pattern, grouped by `signature`, most frequent first.

    Each group: signature, count, first_seen, last_seen (the kubelet timestamps when
    `timestamped`, i.e. each line starts with an RFC 3339 stamp and a space; else None) and one
    example line (the first).
    """
    # One buffer for the engine; a newline inside a line (not one of `splitlines`) is a space.
    text = "\n".join(line.replace("\n", " ") for line in lines)
    return group_stream([text.encode()], patterns, timestamped) if text else []


def merge_groups(per_source: Sequence[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Groups from several containers as one list: counts summed, first/last seen widened."""
    merged: dict[str, dict[str, Any]] = {}
    for source, groups in per_source:
        for group in groups:
            into = merged.setdefault(group["signature"],
                                     {**group, "count": 0, "sources": [], "per_minute": {}})
            into["count"] += group["count"]
            into["first_seen"] = min(filter(None, (into["first_seen"], group["first_seen"])), default=None)
            into["last_seen"] = max(filter(None, (into["last_seen"], group["last_seen"])), default=None)
            into["sources"].append(source)
            if group.get("per_minute"):
                summed = Counter(into["per_minute"]) + Counter(group["per_minute"])
                into["per_minute"] = dict(sorted(summed.items()))
    for group in merged.values():
        if not group["per_minute"]:
            del group["per_minute"]
    return sorted(merged.values(), key=lambda g: -g["count"])


