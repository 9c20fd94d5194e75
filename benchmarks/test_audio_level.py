"""Native audio level vs numpy on a 20 ms frame, and vs a plain copy on long buffers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import rtcroom

RATE = 48000
SIZES = {"960 samples": 960, "1 s": RATE, "60 s": 60 * RATE}


def numpy_level(x: np.ndarray) -> int:
    return min(int(np.abs(x.astype(np.int32)).max()), 32767)


def samples(n: int) -> np.ndarray:
    return np.random.default_rng(1).integers(-32768, 32768, n, dtype=np.int16)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("role", ["native", "numpy", "copy"])
def test_audio_level(compare: Callable[..., Any], benchmark: Any, size: str, role: str) -> None:
    x = samples(SIZES[size])
    if role == "copy" and size == "960 samples":
        pytest.skip("the copy baseline is for long buffers")
    if role == "numpy" and size != "960 samples":
        pytest.skip("the numpy baseline is for the 20 ms frame")
    fn = {"native": rtcroom.audio_level, "numpy": numpy_level, "copy": np.copy}[role]
    compare(f"audio_level {size}", role, benchmark, fn, x)


def test_audio_level_dbov_960(compare: Callable[..., Any], benchmark: Any) -> None:
    compare("audio_level_dbov 960 samples", "native", benchmark, rtcroom.audio_level_dbov,
            samples(960))
