"""Plain-Python oracles for the native audio level kernels, written from the definitions."""

from __future__ import annotations

import math
from collections.abc import Sequence


def level(samples: Sequence[int]) -> int:
    """The reference's AudioLevel: max |sample|, -32768 counted as 32767."""
    return min(32767, max((abs(s) for s in samples), default=0))


def level_dbov(samples: Sequence[int]) -> int:
    """RFC 6464: -dBov of the RMS, full scale 32768, 127 for silence (libwebrtc's RmsLevel)."""
    energy = sum(s * s for s in samples)
    if not samples or energy == 0:
        return 127
    mean_square = energy / len(samples) / (32768.0 * 32768.0)
    value = -10.0 * math.log10(mean_square) + 0.5
    if value >= 127:
        return 127
    return 0 if value <= 0 else int(value)


def frames(samples: Sequence[int], frame_length: int) -> list[Sequence[int]]:
    return [samples[i : i + frame_length] for i in range(0, len(samples), frame_length)]
