"""Small operations on PyAV frames: audio level, silence and black of the same shape."""

from __future__ import annotations

import av
import numpy as np

from rtcroom.audiolevel import audio_level

__all__ = ["black_like", "frame_audio_level", "silence_like"]


def frame_audio_level(frame: av.AudioFrame) -> int:
    """The frame's AudioLevel (0..32767, the peak over all channels), by the native kernel."""
    samples: np.ndarray = np.asarray(frame.to_ndarray())
    if samples.dtype.kind == "f":
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    elif samples.dtype == np.int32:
        samples = (samples >> 16).astype(np.int16)
    elif samples.dtype == np.uint8:
        samples = ((samples.astype(np.int16) - 128) << 8).astype(np.int16)
    return int(audio_level(np.ascontiguousarray(samples)))


def silence_like(frame: av.AudioFrame) -> av.AudioFrame:
    """A silent frame with ``frame``'s format, layout, length and timing."""
    samples = frame.to_ndarray()
    silent = av.AudioFrame.from_ndarray(
        np.zeros_like(samples), format=frame.format.name, layout=frame.layout.name
    )
    silent.sample_rate = frame.sample_rate
    _copy_timing(frame, silent)
    return silent


def black_like(frame: av.VideoFrame) -> av.VideoFrame:
    """A black frame with ``frame``'s size and timing (yuv420p when the size allows)."""
    w, h = frame.width, frame.height
    if w % 2 or h % 2:
        black = av.VideoFrame.from_ndarray(np.zeros((h, w, 3), dtype=np.uint8), format="rgb24")
    else:
        planes = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
        planes[:h] = 16
        black = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    _copy_timing(frame, black)
    return black


def _copy_timing(source: av.frame.Frame, target: av.frame.Frame) -> None:
    target.pts = source.pts
    if source.time_base is not None:
        target.time_base = source.time_base
