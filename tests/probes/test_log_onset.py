"""A signature's onset is when its rate rose above its own background, read from kubelet lines
grouped by the probe's own grouping (probes/log_groups.py), not its first line."""

from __future__ import annotations

from datetime import UTC, datetime

from probes.log_groups import group_errors, merge_groups
from probes.log_onset import onset_of, signature_onset


def stamped(minute: int, second: int, text: str) -> str:
    return f"2026-11-27T02:{minute:02d}:{second:02d}.000000123Z {text}"


def grouped(lines: list[str]) -> list[dict[str, object]]:
    return group_errors(sorted(lines), [r"\bERROR\b"], timestamped=True)


def test_one_signature_that_jumps_from_its_trickle_began_at_the_jump() -> None:
    trickle = [stamped(m, 7, "ERROR upstream write failed: Broken pipe") for m in range(30, 41)]
    burst = [stamped(m, s, "ERROR upstream write failed: Broken pipe") for m in range(41, 45) for s in range(0, 60, 3)]
    [group] = grouped(trickle + burst)
    kind, at, words = signature_onset(group["per_minute"], 2.0)  # type: ignore[arg-type]
    assert (kind, at) == ("rose", datetime(2026, 11, 27, 2, 41, tzinfo=UTC))
    assert words == "when its rate rose above its own background (1.0/min before, 20.0/min after)"


def test_a_steady_trickle_is_background_and_a_new_signature_dates_the_trouble() -> None:
    trickle = [stamped(m, 7, "ERROR Broken pipe") for m in range(32, 45)]
    failure = [stamped(m, s, "ERROR payment failed: KeyError card_token") for m in range(41, 45) for s in (0, 20, 40)]
    groups = grouped(trickle + failure)
    assert signature_onset(groups[0]["per_minute"] if "Broken" in str(groups[0]["signature"])  # type: ignore[arg-type]
                           else groups[1]["per_minute"], 2.0)[0] == "background"  # type: ignore[arg-type]
    at, words = onset_of(groups, 2.0)
    assert at == datetime(2026, 11, 27, 2, 41, tzinfo=UTC)
    assert words == "first line of the failing signature; the lines before it are background"


def test_per_minute_counts_add_up_across_containers() -> None:
    lines = [stamped(41, s, "ERROR boom") for s in (1, 2, 3)]
    merged = merge_groups([("a/app", grouped(lines)), ("b/app", grouped(lines))])
    assert merged[0]["per_minute"] == {"2026-11-27T02:41": 6}
    assert merged[0]["count"] == 6


def test_minute_buckets_match_a_line_by_line_count_however_the_stream_is_cut() -> None:
    import random
    from collections import Counter
    from datetime import timedelta

    from probes.log_groups import group_stream

    rng, t, lines = random.Random(7), datetime(2026, 11, 27, tzinfo=UTC), []
    for _ in range(5000):
        t += timedelta(seconds=rng.choice([0, 0, 1, 3, 17, 90]))
        lines.append(f"{t:%Y-%m-%dT%H:%M:%S}.000000123Z " + rng.choice(["ERROR a 1", "INFO x", "ERROR b 2"]))
    expected: dict[str, Counter[str]] = {}
    for line in lines:
        if "ERROR" in line:
            expected.setdefault(line.split(" ")[2], Counter())[line[:16]] += 1
    raw = ("\n".join(lines) + "\n").encode()
    for size in (len(raw), 4096, 777):  # one buffer, or chunks cutting lines anywhere
        groups = group_stream([raw[i:i + size] for i in range(0, len(raw), size)], [r"ERROR"], timestamped=True)
        got = {str(g["example"]).split(" ")[1]: g["per_minute"] for g in groups}
        assert got == {k: dict(sorted(v.items())) for k, v in expected.items()}, size
