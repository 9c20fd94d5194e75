"""Audio levels of int16 PCM, computed by the native kernel (src/native/audio/).

Two scales are used in rtcroom:

- the reference's AudioLevel, 0..32767: the largest absolute sample of the frame, with -32768
  counted as 32767. This is what stats and ``audio_level`` properties report;
- the RFC 6464 level, 0..127: minus the frame's RMS in dBov (127 is silence). This is what the
  audio-level RTP header extension carries and what dominant speaker detection reads.

Samples are anything with the buffer protocol holding int16 in native byte order: numpy int16
arrays of any shape and strides, ``bytes``/``bytearray``/``memoryview`` of little-endian int16,
PyAV ``AudioFrame`` planes of s16/s16p frames (or ``frame.to_ndarray()``). Interleaved
multi-channel audio gives the level over all channels. The kernels run without the GIL.

``audio_level_dbov`` is round(-10 log10(mean square / 32768^2)), libwebrtc's RmsLevel: digital
silence (and no samples) is 127, as RFC 6464 requires, and a full-scale sine gives 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtcroom._native import audio as _audio

# The per-frame functions are the native ones themselves: a Python wrapper would add a third to
# the cost of a 20 ms frame. Errors: TypeError for a non-buffer or a buffer of another type than
# int16; ValueError for byte-swapped int16 or a byte buffer of odd length.
audio_level = _audio.audio_level
audio_level_dbov = _audio.audio_level_dbov

# Anything with the buffer protocol (collections.abc.Buffer once Python 3.12 is the floor).
Samples = Any

__all__ = ["audio_level", "audio_level_dbov", "audio_levels", "audio_levels_dbov"]


def audio_levels(samples: Samples, frame_length: int) -> np.ndarray:
    """:func:`audio_level` of each consecutive frame of ``frame_length`` samples, in one call.

    The samples are taken in C order over all dimensions; ``frame_length`` counts samples of all
    channels (960 for 20 ms of mono 48 kHz, 1920 for stereo). A short last frame is included.
    Returns an int32 array of ceil(samples / frame_length) levels.
    """
    return np.frombuffer(_audio.audio_levels(samples, frame_length), dtype=np.intc)


def audio_levels_dbov(samples: Samples, frame_length: int) -> np.ndarray:
    """:func:`audio_level_dbov` of each consecutive frame, as :func:`audio_levels` cuts them."""
    return np.frombuffer(_audio.audio_levels_dbov(samples, frame_length), dtype=np.intc)
