"""Native audio level kernels against their plain-Python oracles (tests/reference_audio.py)."""

from __future__ import annotations

import array
import sys

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference_audio as ref
import rtcroom

EDGES = st.sampled_from([-32768, -32767, -1, 0, 1, 32766, 32767])
SAMPLES = st.one_of(st.integers(-32768, 32767), EDGES)


def flat(x: np.ndarray) -> list[int]:
    return [int(v) for v in x.reshape(-1)]


@st.composite
def views(draw: st.DrawFn) -> np.ndarray:
    """int16 arrays of 0-4 dimensions, then sliced with random steps and maybe transposed, so the
    kernel sees contiguous, strided, negative-stride and Fortran-ordered buffers."""
    base = draw(hnp.arrays(np.int16, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0,
                                                        max_side=9), elements=SAMPLES))
    index = tuple(
        slice(None, None, draw(st.sampled_from([1, 2, 3, -1, -2]))) for _ in range(base.ndim)
    )
    view = base[index]
    if draw(st.booleans()):
        view = view.T
    return view


@given(views())
@settings(max_examples=400)
def test_level_matches_reference_on_any_layout(x: np.ndarray) -> None:
    assert rtcroom.audio_level(x) == ref.level(flat(x))


@given(views())
@settings(max_examples=400)
def test_dbov_matches_reference_on_any_layout(x: np.ndarray) -> None:
    assert rtcroom.audio_level_dbov(x) == ref.level_dbov(flat(x))


@given(views(), st.integers(1, 50))
@settings(max_examples=300)
def test_batch_matches_reference_frame_by_frame(x: np.ndarray, frame_length: int) -> None:
    samples = flat(x)
    chunks = ref.frames(samples, frame_length)
    assert rtcroom.audio_levels(x, frame_length).tolist() == [ref.level(c) for c in chunks]
    assert rtcroom.audio_levels_dbov(x, frame_length).tolist() == [
        ref.level_dbov(c) for c in chunks
    ]


@given(st.lists(SAMPLES, max_size=3000), st.integers(0, 1))
def test_bytes_are_little_endian_int16_at_any_offset(samples: list[int], offset: int) -> None:
    # An odd offset makes the int16 reads unaligned, which the kernel must handle.
    raw = b"\x00" * offset + array.array("h", samples).tobytes()
    if sys.byteorder == "big":
        pytest.skip("byte buffers are read as little-endian int16 on little-endian hosts only")
    view = memoryview(raw)[offset:]
    assert rtcroom.audio_level(view) == ref.level(samples)
    assert rtcroom.audio_level_dbov(bytearray(view)) == ref.level_dbov(samples)


@given(hnp.arrays(np.int16, st.integers(0, 20000), elements=SAMPLES))
@settings(max_examples=60)
def test_long_contiguous_buffers_take_the_vector_path(x: np.ndarray) -> None:
    assert rtcroom.audio_level(x) == ref.level(flat(x))
    assert rtcroom.audio_level_dbov(x) == ref.level_dbov(flat(x))


def test_edge_values() -> None:
    assert rtcroom.audio_level(np.array([-32768], np.int16)) == 32767
    assert rtcroom.audio_level(np.array([32767], np.int16)) == 32767
    assert rtcroom.audio_level(np.array([0, 0], np.int16)) == 0
    assert rtcroom.audio_level(np.array([-5, 3], np.int16)) == 5
    assert rtcroom.audio_level(np.int16(-7)) == 7  # a 0-d buffer is one sample


def test_empty_input() -> None:
    assert rtcroom.audio_level(b"") == 0
    assert rtcroom.audio_level(np.zeros((0, 2), np.int16)) == 0
    assert rtcroom.audio_level_dbov(b"") == 127
    assert rtcroom.audio_levels(b"", 960).tolist() == []


def test_dbov_known_values() -> None:
    t = np.arange(48000)
    full_sine = np.round(np.sin(2 * np.pi * 1000 * t / 48000) * 32767).astype(np.int16)
    assert rtcroom.audio_level_dbov(full_sine) == 3  # RMS of a full-scale sine is -3 dBov
    assert rtcroom.audio_level_dbov(np.full(960, -32768, np.int16)) == 0
    assert rtcroom.audio_level_dbov(np.zeros(960, np.int16)) == 127
    assert rtcroom.audio_level_dbov(np.ones(960, np.int16)) == 90  # 20 log10(1/32768) = -90.3


def test_interleaved_stereo_counts_every_channel() -> None:
    stereo = np.zeros((960, 2), np.int16)
    stereo[600, 1] = -1234  # sample 1201: the second 960-sample frame
    assert rtcroom.audio_level(stereo) == 1234
    assert rtcroom.audio_levels(stereo, 960).tolist() == [0, 1234]


def test_batch_returns_int32_array_with_short_last_frame() -> None:
    levels = rtcroom.audio_levels(np.arange(2000, dtype=np.int16), 960)
    assert levels.dtype == np.intc
    assert levels.tolist() == [959, 1919, 1999]


@pytest.mark.parametrize("layout, fmt", [("mono", "s16"), ("stereo", "s16"), ("stereo", "s16p")])
def test_pyav_frames(layout: str, fmt: str) -> None:
    rng = np.random.default_rng(7)
    channels = 2 if layout == "stereo" else 1
    shape = (channels, 960) if fmt.endswith("p") else (1, 960 * channels)
    data = rng.integers(-20000, 20000, size=shape, dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    frame.sample_rate = 48000
    expected = ref.level(flat(data))
    assert max(rtcroom.audio_level(p) for p in frame.planes) == expected
    assert rtcroom.audio_level(frame.to_ndarray()) == expected


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (np.zeros(4, np.float32), TypeError, "format 'f'"),
        (np.zeros(4, np.int32), TypeError, "int16"),
        (np.zeros(4, np.uint16), TypeError, "format 'H'"),
        (np.zeros(4, ">i2"), ValueError, "byte-swapped"),
        (b"\x00\x01\x02", ValueError, "odd length"),
        (memoryview(b"abcdef")[::2], ValueError, "contiguous"),
        ([1, 2, 3], TypeError, "buffer protocol"),
        ("abc", TypeError, "not str"),
        (None, TypeError, "not NoneType"),
    ],
)
def test_bad_input_says_what_was_expected(bad: object, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        rtcroom.audio_level(bad)  # type: ignore[arg-type]
    with pytest.raises(error, match=words):
        rtcroom.audio_levels_dbov(bad, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame_length, error", [(0, ValueError), (-3, ValueError),
                                                 (2.5, TypeError), (True, TypeError)])
def test_bad_frame_length(frame_length: object, error: type) -> None:
    with pytest.raises(error, match="frame_length"):
        rtcroom.audio_levels(np.zeros(10, np.int16), frame_length)  # type: ignore[arg-type]


def test_buffer_is_released_after_errors_and_calls() -> None:
    # A buffer still held by the kernel would make resizing the bytearray fail.
    data = bytearray(10)
    rtcroom.audio_level(data)
    with pytest.raises(ValueError):
        rtcroom.audio_levels(data, 0)
    data.extend(b"\x00\x00")
    assert rtcroom.audio_level(data) == 0
