"""Synthetic sources, the fake devices of a process without microphone or camera.

:class:`ToneTrack` is a continuous sine tone; :class:`TestPatternTrack` is a set of colour bars
with a grey square that moves one step per frame, so every frame differs from the last and a
receiver can tell frames apart. Both are aiortc MediaStreamTracks paced in real time.
"""

from __future__ import annotations

import fractions

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtcroom.media.pacing import Pacer

__all__ = ["TestPatternTrack", "ToneTrack"]

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)


class ToneTrack(MediaStreamTrack):
    """A sine tone in 20 ms s16 frames (``amplitude`` is a fraction of full scale)."""

    kind = "audio"

    def __init__(
        self,
        frequency: float = 440.0,
        sample_rate: int = 48000,
        channels: int = 1,
        amplitude: float = 0.25,
        ptime: float = 0.020,
    ) -> None:
        super().__init__()
        if channels not in (1, 2):
            raise ValueError(f"channels: expected 1 or 2, got {channels}")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude: expected 0..1, got {amplitude}")
        self.frequency = frequency
        self.sample_rate = sample_rate
        self.channels = channels
        self.amplitude = amplitude
        self.samples_per_frame = round(sample_rate * ptime)
        self._pacer = Pacer(self.samples_per_frame / sample_rate)
        self._time_base = fractions.Fraction(1, sample_rate)

    def samples(self, index: int) -> np.ndarray:
        """The int16 samples of frame ``index`` (shape ``(1, n * channels)``, interleaved)."""
        n = self.samples_per_frame
        t = (np.arange(n) + index * n) / self.sample_rate
        wave = np.sin(2 * np.pi * self.frequency * t) * (self.amplitude * 32767)
        mono = wave.astype(np.int16)
        return np.repeat(mono, self.channels).reshape(1, -1)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pacer.wait()
        layout = "mono" if self.channels == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(self.samples(index), format="s16", layout=layout)
        frame.sample_rate = self.sample_rate
        frame.pts = index * self.samples_per_frame
        frame.time_base = self._time_base
        return frame


# BT.601 limited-range YUV of white, yellow, cyan, green, magenta, red, blue, black.
_BARS_YUV = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
]


# Mid grey: a colour none of the bars has.
_SQUARE_Y = 126


class TestPatternTrack(MediaStreamTrack):
    """Colour bars with a moving grey square, as yuv420p frames at ``frame_rate``."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, frame_rate: int = 30) -> None:
        super().__init__()
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"size: expected even width and height >= 16, got {width}x{height}")
        if not 1 <= frame_rate <= 120:
            raise ValueError(f"frame_rate: expected 1..120, got {frame_rate}")
        self.width, self.height, self.frame_rate = width, height, frame_rate
        self._pacer = Pacer(1 / frame_rate)
        self._bars = self._make_bars()
        self._square = max(2, (min(width, height) // 8) & ~1)

    def _make_bars(self) -> np.ndarray:
        w, h = self.width, self.height
        planes = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y, u, v = planes[:h], planes[h : h + h // 4], planes[h + h // 4 :]
        # U and V are (h/2, w/2) planes stored row-pairs-flattened in the (h/4, w) slices.
        u2, v2 = u.reshape(h // 2, w // 2), v.reshape(h // 2, w // 2)
        for i, (yy, uu, vv) in enumerate(_BARS_YUV):
            x0, x1 = i * w // len(_BARS_YUV), (i + 1) * w // len(_BARS_YUV)
            y[:, x0:x1] = yy
            u2[:, x0 // 2 : x1 // 2] = uu
            v2[:, x0 // 2 : x1 // 2] = vv
        return planes

    def square_position(self, index: int) -> tuple[int, int]:
        """Top-left corner of the square in frame ``index`` (it sweeps left and right)."""
        s = self._square
        span_x, span_y = self.width - s, self.height - s
        step = 4
        x = (index * step) % (2 * span_x)
        x = x if x < span_x else 2 * span_x - x
        y = (index * step // max(1, span_x)) * s % max(1, span_y)
        return x & ~1, y & ~1

    def pixels(self, index: int) -> np.ndarray:
        """The yuv420p planes of frame ``index`` as one ``(h * 3 / 2, w)`` uint8 array."""
        planes = self._bars.copy()
        x, y = self.square_position(index)
        s, w, h = self._square, self.width, self.height
        planes[y : y + s, x : x + s] = _SQUARE_Y
        u2 = planes[h : h + h // 4].reshape(h // 2, w // 2)
        v2 = planes[h + h // 4 :].reshape(h // 2, w // 2)
        u2[y // 2 : (y + s) // 2, x // 2 : (x + s) // 2] = 128
        v2[y // 2 : (y + s) // 2, x // 2 : (x + s) // 2] = 128
        return planes

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pacer.wait()
        frame = av.VideoFrame.from_ndarray(self.pixels(index), format="yuv420p")
        frame.pts = index * VIDEO_CLOCK_RATE // self.frame_rate
        frame.time_base = VIDEO_TIME_BASE
        return frame
