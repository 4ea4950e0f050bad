"""A measured rate (error ratio, events per minute) with its window, sample size and baseline,
and the one rule that says whether it is a spike. Shared by every probe that measures a rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# The baseline two scrapes of a counter give (its ratio since the app started): weaker than a
# probe with real history, whose judgement wins where both judged the same trouble.
LIFETIME = "the counters' lifetime ratio"

RateVerdict = Literal["spike", "small_sample", "at_baseline"]


@dataclass(frozen=True)
class Rate:
    """A measured rate and what it takes to judge it: the window, the sample size behind it and
    the same rate at a normal time. Any probe that measures a rate (app metrics, Prometheus, log
    lines) fills one in, so triage can tell a spike from noise without knowing the probe.
    """

    value: float  # now: errors/requests (unit "ratio") or events per minute ("per_minute")
    unit: Literal["ratio", "per_minute"]
    window_s: float  # how long the measurement ran
    samples: int | None = None  # the requests (or events) behind `value`; None when unknown
    baseline: float | None = None  # the same rate an hour or a day earlier, when known
    baseline_from: str = ""  # where the baseline came from ("ledger sweeps", "prometheus", ...)
    verdict: RateVerdict = "spike"  # the probe's judgement against its thresholds

    def describe(self) -> str:
        now = f"{self.value:.1%}" if self.unit == "ratio" else f"{self.value:.1f}/min"
        parts = [f"{now} over {self.window_s:.0f}s"]
        if self.samples is not None:
            parts.append(f"n={self.samples}")
        if self.baseline is not None:
            base = f"{self.baseline:.1%}" if self.unit == "ratio" else f"{self.baseline:.1f}/min"
            parts.append(f"baseline {base}" + (f" ({self.baseline_from})" if self.baseline_from else ""))
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rate:
        return cls(**data)


def judge_rate(value: float, samples: int | None, baseline: float | None, min_samples: int,
               baseline_factor: float) -> RateVerdict:
    """A spike, or why not: too few samples to mean anything, or no worse than usual.

    `baseline_factor` is how many times the baseline the rate must be to count as a spike.
    """
    if samples is not None and samples < min_samples:
        return "small_sample"
    if baseline is not None and value <= baseline * baseline_factor:
        return "at_baseline"
    return "spike"
