"""pytest-benchmark glue: each benchmark records its role in a comparison, and the run ends with the
ratios between roles of the same comparison (e.g. numpy / native), all from this one run.

Use the `compare` fixture: `compare("audio_level 960", "numpy", benchmark, fn, *args)`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_results: dict[str, dict[str, float]] = defaultdict(dict)

# Pairs reported as "baseline / candidate": how many times the candidate is faster.
RATIOS: list[tuple[str, str]] = [
    ("numpy", "native"),
    ("copy", "native"),
    ("python", "native"),
    ("relay", "forward"),
    ("rtp_parse", "detector"),
]


@pytest.fixture
def compare() -> Callable[..., Any]:
    def run(comparison: str, role: str, benchmark: Any, fn: Callable[..., Any], *args: Any) -> Any:
        benchmark.group = comparison
        benchmark.extra_info["role"] = role
        result = benchmark(fn, *args)
        if benchmark.stats is not None:  # None under --benchmark-disable
            _results[comparison][role] = benchmark.stats.stats.min
        return result

    return run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = []
    for comparison, roles in sorted(_results.items()):
        for baseline, candidate in RATIOS:
            if baseline in roles and candidate in roles:
                ratio = roles[baseline] / roles[candidate]
                lines.append(f"{comparison}: {candidate} is {ratio:.1f}x {baseline}")
    if lines:
        terminalreporter.section("ratios (best times, this run)")
        for line in lines:
            terminalreporter.write_line(line)
