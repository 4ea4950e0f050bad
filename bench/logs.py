"""Figure 5, log analysis: error-signature grouping (`probes.log_groups.group_file`) in MB/s on a
generated log, against `grep -c -E` for the same patterns on the same bytes.

The log is 200 MB (`--quick`: 5 MB) of app lines, about one in eight an error of a handful of
kinds whose ids, durations and addresses vary, so grouping has real signatures to fold. Both
sides start from the file on disk (page cache warm): Hemostat reads it in bounded chunks and
groups; grep counts matching lines (LC_ALL=C). `engines` times the candidate matchers alone on
the same bytes (matching lines counted over the whole buffer): Hyperscan, RE2 and `re`, and
`re_fallback_mb_s` is the grouping with `re` line by line (where Hyperscan is not installed).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from agent.model import LogsSpec
from bench.timing import median

CHUNK_LINES = 10_000
SEED = 8

_ERRORS = (
    "ERROR payment {n} failed: upstream timeout after {ms}ms (host 10.0.{a}.{b})",
    "ERROR order {hex} rejected: inventory service answered 503",
    "FATAL worker {n} exited: out of memory ({ms} MiB)",
    "Traceback (most recent call last): File \"/app/checkout.py\", line {a}, in charge",
    "ERROR db: could not obtain connection within {ms}ms (pool size {a})",
)
_INFOS = (
    "INFO GET /checkout/{n} 200 {ms}ms",
    "INFO POST /cart/{hex} 201 {ms}ms",
    "DEBUG cache hit for user {n}",
    "WARN slow request /search?q={hex} took {ms}ms",
)


def _line(rng: random.Random, i: int) -> str:
    template = rng.choice(_ERRORS) if rng.random() < 0.125 else rng.choice(_INFOS)
    text = template.format(n=rng.randrange(10**6), ms=rng.randrange(5000), a=rng.randrange(256),
                           b=rng.randrange(256), hex=f"{rng.getrandbits(48):012x}")
    return f"2026-11-27T02:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z {text}\n"


def generate(path: Path, megabytes: float) -> int:
    """Write about `megabytes` MB of log to `path`; returns its size in bytes."""
    rng, target, i = random.Random(SEED), int(megabytes * 1_000_000), 0
    with path.open("w") as out:
        while out.tell() < target:
            out.write("".join(_line(rng, i + k) for k in range(CHUNK_LINES)))
            i += CHUNK_LINES
    return path.stat().st_size


def group_errors() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("probes.log_groups")
    except ImportError:
        return None
    return getattr(module, "group_file", None)


def grouped_lines(groups: Any) -> int | None:
    """How many lines the groups hold, for whatever shape group_errors returns (None if unknown)."""
    items = groups.values() if isinstance(groups, dict) else groups
    total = 0
    for item in items:
        count = item if isinstance(item, int) else (
            item.get("count") if isinstance(item, dict) else getattr(item, "count", None))
        if not isinstance(count, int):
            return None
        total += count
    return total


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return median(times), result


def _side_by_side(first: Callable[[], Any], second: Callable[[], Any],
                  runs: int) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """Each side's median, the runs interleaved (a, b, a, b, ...): on a shared machine a burst of
    load then weighs on both sides alike instead of on whichever ran during it."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[Any] = [None, None]
    for _ in range(runs):
        for i, fn in enumerate((first, second)):
            started = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - started)
    return (median(times[0]), results[0]), (median(times[1]), results[1])


def _grep(path: Path, patterns: list[str]) -> int:
    done = subprocess.run(["grep", "-c", "-E", "|".join(f"({p})" for p in patterns), str(path)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "LC_ALL": "C"})
    return int(done.stdout.strip() or 0)


def _hemostat(path: Path, patterns: list[str], group: Callable[..., Any]) -> Any:
    return group(path, patterns, timestamped=True)


def _count_lines(buf: bytes, ends: Iterable[int]) -> int:
    lines, last = 0, -1
    for end in ends:
        start = buf.rfind(b"\n", 0, end)
        if start != last:
            lines, last = lines + 1, start
    return lines


def _engines(path: Path, patterns: list[str]) -> dict[str, Any]:
    """Matching lines of the whole buffer by each engine that is installed: MB/s and count."""
    buf, alternation = path.read_bytes(), "|".join(f"(?:{p})" for p in patterns).encode()
    runs: dict[str, Callable[[], int]] = {
        "re": lambda: _count_lines(buf, (m.end() for m in re.compile(alternation).finditer(buf)))}
    with contextlib.suppress(ImportError):
        import re2
        runs["re2"] = lambda: _count_lines(buf, (m.end() for m in re2.compile(alternation).finditer(buf)))
    with contextlib.suppress(ImportError):
        import hyperscan
        db = hyperscan.Database()
        db.compile(expressions=[alternation], ids=[0], elements=1, flags=[0])

        def scan() -> int:
            ends: list[int] = []
            db.scan(buf, match_event_handler=lambda *hit: ends.append(hit[2]))
            return _count_lines(buf, ends)
        runs["hyperscan"] = scan
    out = {}
    for name, run in runs.items():
        seconds, count = _timed(run, 1)
        out[name] = {"mb_s": round(len(buf) / 1e6 / seconds, 1), "lines": count}
    return out


def run(quick: bool) -> dict[str, Any]:
    group = group_errors()
    if group is None:
        return {"absent": ["probes/k8s_logs.py (group_errors) is not there yet"]}
    megabytes, runs = (5, 3) if quick else (200, 5)
    patterns = LogsSpec().patterns
    with _log_file(megabytes) as path:
        size_mb = path.stat().st_size / 1_000_000
        (grep_s, grep_count), (hemo_s, groups) = _side_by_side(
            lambda: _grep(path, patterns), lambda: _hemostat(path, patterns, group), runs)
        engines = _engines(path, patterns)
        loop_s, _ = _timed(lambda: group(path, patterns, timestamped=True, engine="re"), 1)
    grouped = grouped_lines(groups)
    return {
        "megabytes": round(size_mb, 1), "patterns": patterns, "runs": runs,
        "hemostat_mb_s": round(size_mb / hemo_s, 1), "hemostat_s": round(hemo_s, 3),
        "engines": engines, "re_fallback_mb_s": round(size_mb / loop_s, 1),
        "grep_mb_s": round(size_mb / grep_s, 1), "grep_s": round(grep_s, 3),
        "grep_matches": grep_count, "grouped_lines": grouped,
        "groups": len(groups) if hasattr(groups, "__len__") else None,
        "counts_agree": grouped == grep_count if grouped is not None else None,
        "ratio": round(grep_s / hemo_s, 3),
        "ratio_means": "hemostat MB/s / grep -c -E MB/s, file on disk to answer",
    }


@contextlib.contextmanager
def _log_file(megabytes: float) -> Iterator[Path]:
    """A generated log in a temp dir, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        path = Path(tmp) / "app.log"
        generate(path, megabytes)
        yield path
