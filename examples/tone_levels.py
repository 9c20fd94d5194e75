"""Audio levels of a generated tone, 20 ms at a time, with rtcroom's native kernels.

    python examples/tone_levels.py

A 440 Hz tone fades in and out over one second; each line shows one 20 ms frame's AudioLevel
(0..32767, what stats report) and RFC 6464 level (0..127 dBov below full scale, what the SFU reads
for dominant speaker).
"""

import numpy as np

import rtcroom

RATE = 48000
FRAME = RATE // 50  # 20 ms

t = np.arange(RATE) / RATE
envelope = np.sin(np.pi * t)  # silent -> full -> silent
tone = (np.sin(2 * np.pi * 440 * t) * envelope * 32767).astype(np.int16)

peaks = rtcroom.audio_levels(tone, FRAME)
dbov = rtcroom.audio_levels_dbov(tone, FRAME)
for i, (peak, level) in enumerate(zip(peaks, dbov)):
    bar = "#" * (int(peak) * 40 // 32767)
    print(f"{i * 20:4d} ms  level {peak:5d}  -{level:3d} dBov  {bar}")
