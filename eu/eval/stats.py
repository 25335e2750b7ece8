"""Intervals for the numbers eu reports: Wilson intervals for rates, bootstrap intervals for
ratios of accuracies, mean and standard deviation across training seeds, and the verdict a
claim gets from an interval (``met`` only when the whole interval satisfies it)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""
BOOTSTRAP_SAMPLES = 2000


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate ``hits / n`` (``(0, 1)`` when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= hits <= n:
        raise ValueError(f"hits must be in [0, n], got {hits} of {n}")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value) of ``values``."""
    if not values:
        raise ValueError("mean_sd needs at least one value")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _mean_over_runs(runs: Sequence[Sequence[bool]], picks: Sequence[int]) -> float:
    return sum(sum(run[i] for i in picks) / len(picks) for run in runs) / len(runs)


def ratio_interval(
    numerator: Sequence[Sequence[bool]],
    denominator: Sequence[Sequence[bool]],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``accuracy(numerator) / accuracy(denominator)``.

    Each argument holds one list of per-item outcomes per training seed, every list over the same
    items in the same order; items are resampled together (a paired bootstrap), and each side's
    accuracy is its mean over seeds. ``None`` when the lists do not share their items or a resample's
    denominator is zero more often than the interval's tail allows.
    """
    lengths = {len(run) for run in (*numerator, *denominator)}
    if not numerator or not denominator or len(lengths) != 1 or 0 in lengths:
        return None
    n = lengths.pop()
    rng = random.Random(f"ratio:{seed}")
    ratios = []
    for _ in range(samples):
        picks = [rng.randrange(n) for _ in range(n)]
        below = _mean_over_runs(denominator, picks)
        ratios.append(_mean_over_runs(numerator, picks) / below if below else math.inf)
    ratios.sort()
    tail = (1 - level) / 2
    lo, hi = ratios[int(tail * samples)], ratios[min(samples - 1, int((1 - tail) * samples))]
    return None if math.isinf(hi) else (lo, hi)


def verdict(interval: tuple[float, float] | None, at_least: float | None = None, at_most: float | None = None) -> str:
    """``met`` when the whole interval satisfies the bound, ``not met`` when none of it does,
    ``undecided`` when it straddles the bound or is unknown."""
    if interval is None:
        return "undecided"
    lo, hi = interval
    if at_least is not None:
        return "met" if lo >= at_least - 1e-9 else ("not met" if hi < at_least - 1e-9 else "undecided")
    if at_most is not None:
        return "met" if hi <= at_most + 1e-9 else ("not met" if lo > at_most + 1e-9 else "undecided")
    raise ValueError("verdict needs at_least or at_most")


def all_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict for a claim made of several parts: met when all are, not met when any is not."""
    if any(v == "not met" for v in verdicts):
        return "not met"
    return "met" if verdicts and all(v == "met" for v in verdicts) else "undecided"


def format_rate(value: float | None, interval: tuple[float, float] | None = None, digits: int = 2) -> str:
    """``0.50 [0.40, 0.60]``, or ``–`` for an unknown value."""
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else text
