"""asv suite for the native audio level: times, and ratios measured within one run (track_*)."""

from __future__ import annotations

import numpy as np

import rtcroom

from .ratio import speedup

RATE = 48000


def _samples(n: int) -> np.ndarray:
    return np.random.default_rng(1).integers(-32768, 32768, n, dtype=np.int16)


def _numpy_level(x: np.ndarray) -> int:
    return min(int(np.abs(x.astype(np.int32)).max()), 32767)


class AudioLevel:
    params = [960, RATE, 60 * RATE]
    param_names = ["samples"]

    def setup(self, n: int) -> None:
        self.x = _samples(n)

    def time_native(self, n: int) -> None:
        rtcroom.audio_level(self.x)

    def time_dbov_native(self, n: int) -> None:
        rtcroom.audio_level_dbov(self.x)

    def time_numpy(self, n: int) -> None:
        _numpy_level(self.x)

    def time_copy(self, n: int) -> None:
        np.copy(self.x)


def track_native_vs_numpy_960() -> float:
    """Times faster than numpy on a 20 ms frame at 48 kHz (target >= 10)."""
    x = _samples(960)
    return speedup(lambda: _numpy_level(x), lambda: rtcroom.audio_level(x), number=2000)


track_native_vs_numpy_960.unit = "x"  # type: ignore[attr-defined]


def _vs_copy(n: int) -> float:
    x = _samples(n)
    return speedup(lambda: np.copy(x), lambda: rtcroom.audio_level(x), number=max(1, RATE // n * 20))


def track_native_vs_copy_1s() -> float:
    """Throughput relative to a numpy copy of a 1 s buffer (target >= 0.5)."""
    return _vs_copy(RATE)


def track_native_vs_copy_60s() -> float:
    """Throughput relative to a numpy copy of a 60 s buffer (target >= 0.5)."""
    return _vs_copy(60 * RATE)


track_native_vs_copy_1s.unit = "x"  # type: ignore[attr-defined]
track_native_vs_copy_60s.unit = "x"  # type: ignore[attr-defined]
