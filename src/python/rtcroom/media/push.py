"""Tracks fed from numpy arrays: ``await track.write(samples_or_pixels)``.

The writer produces media at its own pace; the track releases it in real time (20 ms audio
frames, video at ``frame_rate``). ``write`` waits while the track's buffer is full, so a writer
faster than real time is slowed to it; the buffer drains only while the track is being sent
(published) or read. :meth:`end` finishes the stream after what was written.
"""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtcroom.media.pacing import Pacer
from rtcroom.media.synthetic import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE

__all__ = ["AudioPushTrack", "VideoPushTrack"]

_END = object()


class _PushTrack(MediaStreamTrack):
    def __init__(self, period: float, buffer_frames: int) -> None:
        super().__init__()
        if buffer_frames < 1:
            raise ValueError(f"buffer_frames: expected >= 1, got {buffer_frames}")
        self._queue: asyncio.Queue[Any] = asyncio.Queue(buffer_frames)
        self._pacer = Pacer(period)
        self._ended = False

    def _check_open(self) -> None:
        if self._ended or self.readyState != "live":
            raise MediaStreamError(f"{self.kind} push track has ended")

    async def end(self) -> None:
        """No more writes: the stream ends once what was written has been played."""
        if not self._ended:
            self._ended = True
            await self._queue.put(_END)

    async def _next(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is _END:
            self.stop()
            raise MediaStreamError
        await self._pacer.wait()
        return item


class AudioPushTrack(_PushTrack):
    """Audio written as int16 (or float in -1..1) arrays, shape ``(n,)`` or ``(n, channels)``.

    Writes of any length are cut into 20 ms frames; a partial frame waits for the next write
    (or is padded with silence by :meth:`end`).
    """

    kind = "audio"

    def __init__(self, sample_rate: int = 48000, channels: int = 1, buffer_ms: int = 1000) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels: expected 1 or 2, got {channels}")
        if sample_rate not in (8000, 16000, 24000, 32000, 44100, 48000):
            raise ValueError(f"sample_rate: {sample_rate} is not a supported rate")
        self.sample_rate = sample_rate
        self.channels = channels
        self.samples_per_frame = sample_rate // 50
        super().__init__(0.020, max(1, buffer_ms // 20))
        self._pending = np.empty((0, channels), dtype=np.int16)
        self._pts = 0
        self._time_base = fractions.Fraction(1, sample_rate)

    def _as_int16(self, samples: Any) -> np.ndarray:
        array = np.asarray(samples)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != self.channels:
            raise ValueError(
                f"samples: expected shape (n,) or (n, {self.channels}), got {np.shape(samples)}"
            )
        if array.dtype.kind == "f":
            return (np.clip(array, -1.0, 1.0) * 32767).astype(np.int16)
        if array.dtype != np.int16:
            raise TypeError(f"samples: expected int16 or float samples, got {array.dtype}")
        return array

    async def write(self, samples: Any) -> None:
        """Queue ``samples``; waits while the buffer is full."""
        self._check_open()
        pending = np.concatenate([self._pending, self._as_int16(samples)])
        n = self.samples_per_frame
        whole = len(pending) // n * n
        for start in range(0, whole, n):
            await self._queue.put(self._frame(pending[start : start + n]))
        self._pending = pending[whole:]

    async def end(self) -> None:
        """No more writes; a partial last frame is padded with silence."""
        if len(self._pending) and not self._ended:
            padded = np.zeros((self.samples_per_frame, self.channels), dtype=np.int16)
            padded[: len(self._pending)] = self._pending
            self._pending = self._pending[:0]
            await self._queue.put(self._frame(padded))
        await super().end()

    def _frame(self, block: np.ndarray) -> av.AudioFrame:
        layout = "mono" if self.channels == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block).reshape(1, -1), format="s16", layout=layout
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += len(block)
        return frame

    async def recv(self) -> av.AudioFrame:
        frame: av.AudioFrame = await self._next()
        return frame


class VideoPushTrack(_PushTrack):
    """Video written one picture at a time: an ``(h, w, 3)`` uint8 array in ``format``
    (rgb24 or bgr24), ``(h, w)`` for gray, ``(h * 3 / 2, w)`` for yuv420p, or an av.VideoFrame.
    """

    kind = "video"
    FORMATS = ("rgb24", "bgr24", "gray", "yuv420p")

    def __init__(
        self, frame_rate: int = 30, format: str = "rgb24", buffer_frames: int = 30
    ) -> None:
        if not 1 <= frame_rate <= 120:
            raise ValueError(f"frame_rate: expected 1..120, got {frame_rate}")
        if format not in self.FORMATS:
            raise ValueError(f"format: {format!r} is not one of {', '.join(self.FORMATS)}")
        self.frame_rate = frame_rate
        self.format = format
        super().__init__(1 / frame_rate, buffer_frames)
        self._index = 0

    async def write(self, picture: Any) -> None:
        """Queue one picture; waits while the buffer is full."""
        self._check_open()
        if isinstance(picture, av.VideoFrame):
            frame = picture
        else:
            array = np.asarray(picture)
            if array.dtype != np.uint8:
                raise TypeError(f"picture: expected uint8 pixels, got {array.dtype}")
            try:
                frame = av.VideoFrame.from_ndarray(array, format=self.format)
            except ValueError as exc:
                raise ValueError(
                    f"picture: shape {array.shape} does not fit {self.format}: {exc}"
                ) from None
        frame.pts = self._index * VIDEO_CLOCK_RATE // self.frame_rate
        frame.time_base = VIDEO_TIME_BASE
        self._index += 1
        await self._queue.put(frame)

    async def recv(self) -> av.VideoFrame:
        frame: av.VideoFrame = await self._next()
        return frame
