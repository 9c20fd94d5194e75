"""Ratios measured in one run: the baseline and the candidate are timed interleaved, in the same
process, and the best time of each is compared, so machine load shifts both alike."""

from __future__ import annotations

import timeit
from collections.abc import Callable


def best_time(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best seconds per call over `repeat` rounds of `number` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def speedup(baseline: Callable[[], object], candidate: Callable[[], object], *,
            number: int = 100, repeat: int = 7) -> float:
    """How many times faster the candidate is than the baseline (baseline time / candidate time)."""
    base = cand = float("inf")
    for _ in range(repeat):
        base = min(base, best_time(baseline, number, 1))
        cand = min(cand, best_time(candidate, number, 1))
    return base / cand
