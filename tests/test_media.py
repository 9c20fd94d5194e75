"""Media sources and sinks: synthetic tracks, numpy push tracks, fan-out, files, recorder."""

from __future__ import annotations

import asyncio
import fractions
import pathlib

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from rtcroom.audiolevel import audio_level
from rtcroom.media import (
    AudioPushTrack,
    Fanout,
    MediaFile,
    Recorder,
    TestPatternTrack as PatternTrack,  # not a pytest class
    ToneTrack,
    VideoPushTrack,
    black_like,
    frame_audio_level,
    silence_like,
)
from rtcroom.media.pacing import Pacer


async def test_tone_is_a_continuous_sine() -> None:
    tone = ToneTrack(frequency=1000, sample_rate=48000, amplitude=0.5)
    frames = [await tone.recv() for _ in range(3)]
    assert [f.pts for f in frames] == [0, 960, 1920]
    assert all(f.sample_rate == 48000 and f.samples == 960 for f in frames)
    samples = np.concatenate([f.to_ndarray().ravel() for f in frames]).astype(float)
    expected = 0.5 * 32767 * np.sin(2 * np.pi * 1000 * np.arange(len(samples)) / 48000)
    assert np.max(np.abs(samples - expected)) <= 1.0
    # Half of full scale, as the native level kernel measures it.
    assert abs(frame_audio_level(frames[1]) - 16383) <= 1


async def test_stereo_tone_repeats_each_sample() -> None:
    frame = await ToneTrack(channels=2).recv()
    interleaved = frame.to_ndarray().ravel()
    assert frame.layout.name == "stereo"
    assert np.array_equal(interleaved[0::2], interleaved[1::2])


async def test_test_pattern_moves() -> None:
    pattern = PatternTrack(160, 120, frame_rate=30)
    a, b = await pattern.recv(), await pattern.recv()
    assert (a.width, a.height, a.format.name) == (160, 120, "yuv420p")
    assert b.pts - a.pts == 3000  # 90 kHz clock at 30 fps
    assert not np.array_equal(a.to_ndarray(), b.to_ndarray())
    x, y = pattern.square_position(1)
    right_edge = x + pattern._square - 1  # inside the square of frame 1, not of frame 0
    assert a.to_ndarray()[y, right_edge] != 126 and b.to_ndarray()[y, right_edge] == 126


def test_synthetic_sources_check_arguments() -> None:
    with pytest.raises(ValueError, match="channels"):
        ToneTrack(channels=3)
    with pytest.raises(ValueError, match="amplitude"):
        ToneTrack(amplitude=2)
    with pytest.raises(ValueError, match="size"):
        PatternTrack(161, 120)
    with pytest.raises(ValueError, match="frame_rate"):
        PatternTrack(frame_rate=0)


async def test_stopped_source_ends() -> None:
    tone = ToneTrack()
    tone.stop()
    with pytest.raises(MediaStreamError):
        await tone.recv()


async def test_pacer_releases_frames_at_their_time() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(0.01)
    start = loop.time()
    indices = [await pacer.wait() for _ in range(5)]
    assert indices == [0, 1, 2, 3, 4]
    # Frame 4 is due 40 ms after frame 0; asyncio never wakes early.
    assert loop.time() - start >= 0.04 - 1e-3
    with pytest.raises(ValueError):
        Pacer(0)


async def test_audio_push_track_cuts_writes_into_20ms_frames() -> None:
    track = AudioPushTrack(sample_rate=16000, channels=1)
    samples = (np.arange(16000 // 50 * 2 + 100) % 1000).astype(np.int16)
    await track.write(samples[:250])
    await track.write(samples[250:])
    await track.end()
    got = []
    while True:
        try:
            got.append(await track.recv())
        except MediaStreamError:
            break
    assert [f.samples for f in got] == [320, 320, 320]
    assert [f.pts for f in got] == [0, 320, 640]
    out = np.concatenate([f.to_ndarray().ravel() for f in got])
    assert np.array_equal(out[: len(samples)], samples)
    assert not out[len(samples) :].any()  # end() pads the last frame with silence
    with pytest.raises(MediaStreamError):
        await track.write(samples)


async def test_audio_push_track_converts_float_and_checks_shape() -> None:
    track = AudioPushTrack(sample_rate=8000, channels=2)
    await track.write(np.full((160, 2), 0.5))
    frame = await track.recv()
    assert frame.layout.name == "stereo"
    assert audio_level(frame.to_ndarray()) == int(0.5 * 32767)
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, 2\)"):
        await track.write(np.zeros(160, dtype=np.int16))
    with pytest.raises(TypeError, match="int16 or float"):
        await track.write(np.zeros((160, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="sample_rate"):
        AudioPushTrack(sample_rate=12345)


async def test_audio_push_write_waits_when_buffer_is_full() -> None:
    track = AudioPushTrack(sample_rate=8000, buffer_ms=40)  # two frames
    await track.write(np.zeros(320, dtype=np.int16))
    blocked = asyncio.ensure_future(track.write(np.zeros(160, dtype=np.int16)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    await track.recv()
    await asyncio.wait_for(blocked, 5)


async def test_video_push_track() -> None:
    track = VideoPushTrack(frame_rate=10)
    picture = np.zeros((48, 64, 3), dtype=np.uint8)
    picture[:, :, 0] = 200
    await track.write(picture)
    await track.write(picture)
    first, second = await track.recv(), await track.recv()
    assert (first.width, first.height) == (64, 48)
    assert second.pts - first.pts == 9000
    assert abs(int(first.to_ndarray(format="rgb24")[10, 10, 0]) - 200) <= 3
    with pytest.raises(TypeError, match="uint8"):
        await track.write(picture.astype(np.float32))
    with pytest.raises(ValueError, match="does not fit rgb24"):
        await track.write(np.zeros((48, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match="format"):
        VideoPushTrack(format="nv12")


async def test_fanout_gives_every_tap_every_frame_and_drops_for_the_slow() -> None:
    source = AudioPushTrack(sample_rate=8000)
    seen: list[int] = []

    def process(frame: av.AudioFrame) -> av.AudioFrame:
        seen.append(frame.pts)
        return frame

    fanout = Fanout(source, process)
    fast, slow = fanout.subscribe(queue_size=100), fanout.subscribe(queue_size=2)
    await source.write(np.zeros(160 * 5, dtype=np.int16))
    await source.end()
    fast_pts = []
    while True:
        try:
            fast_pts.append((await fast.recv()).pts)
        except MediaStreamError:
            break
    assert fast_pts == [0, 160, 320, 480, 640] == seen
    slow_pts = [(await slow.recv()).pts, (await slow.recv()).pts]
    assert slow_pts == [480, 640] and slow.dropped == 3
    with pytest.raises(MediaStreamError):
        await slow.recv()
    assert fanout.ended
    late = fanout.subscribe()
    with pytest.raises(MediaStreamError):
        await late.recv()


async def test_fanout_close_ends_taps() -> None:
    fanout = Fanout(ToneTrack())
    tap = fanout.subscribe()
    await tap.recv()
    fanout.close()
    with pytest.raises(MediaStreamError):
        while True:
            await tap.recv()


def test_silence_and_black_keep_shape_and_timing() -> None:
    tone = av.AudioFrame.from_ndarray(
        np.ones((1, 1920), dtype=np.int16), format="s16", layout="stereo"
    )
    tone.sample_rate, tone.pts, tone.time_base = 48000, 960, fractions.Fraction(1, 48000)
    silent = silence_like(tone)
    assert (silent.samples, silent.layout.name, silent.pts, silent.sample_rate) == (
        960,
        "stereo",
        960,
        48000,
    )
    assert frame_audio_level(silent) == 0 and frame_audio_level(tone) == 1
    for w, h in ((64, 48), (63, 47)):
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 255, dtype=np.uint8), format="rgb24")
        frame.pts = 3000
        black = black_like(frame)
        assert (black.width, black.height, black.pts) == (w, h, 3000)
        assert black.to_ndarray(format="rgb24").max() <= 3


def test_audio_level_of_float_and_planar_frames() -> None:
    planar = av.AudioFrame.from_ndarray(
        np.array([[0.25] * 480, [-1.0] * 480], dtype=np.float32), format="fltp", layout="stereo"
    )
    assert frame_audio_level(planar) == 32767
    s32 = av.AudioFrame.from_ndarray(
        np.full((1, 480), 1 << 30, dtype=np.int32), format="s32", layout="mono"
    )
    assert frame_audio_level(s32) == 1 << 14


def write_test_file(path: pathlib.Path, seconds: float = 0.5) -> None:
    """A small file with a 16 kHz tone and 96x64 video, written with PyAV."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono")
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(
                np.full((64, 96, 3), i * 20, np.uint8), format="rgb24"
            )
            for packet in video.encode(frame):
                container.mux(packet)
        t = np.arange(int(seconds * 16000)) / 16000
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            chunk = pcm[start : start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)


async def test_media_file_plays_audio_and_video(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "clip.mp4"
    write_test_file(path)
    media = MediaFile(path)
    assert media.audio is not None and media.video is not None
    video = await asyncio.wait_for(media.video.recv(), 10)
    audio = await asyncio.wait_for(media.audio.recv(), 10)
    assert (video.width, video.height) == (96, 64)
    assert frame_audio_level(audio) > 0
    media.close()


def test_media_file_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="cannot read media file"):
        MediaFile(tmp_path / "missing.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt"):
        MediaFile(text)


async def test_recorder_writes_a_readable_file(tmp_path: pathlib.Path) -> None:
    audio = AudioPushTrack(sample_rate=48000)
    video = VideoPushTrack(frame_rate=10)
    out = tmp_path / "out.mkv"
    async with Recorder(out, audio, video):
        for i in range(5):
            await audio.write(np.full(4800, 1000 * (i + 1), dtype=np.int16))
            await video.write(np.full((64, 96, 3), 40 * i, dtype=np.uint8))
        await audio.end()
        await video.end()
        await asyncio.sleep(0.7)
    with av.open(str(out)) as container:
        kinds = sorted(s.type for s in container.streams)
        decoded_video = list(container.decode(video=0))
    assert kinds == ["audio", "video"]
    assert len(decoded_video) >= 3 and (decoded_video[0].width, decoded_video[0].height) == (96, 64)


async def test_recorder_refuses_bad_use(tmp_path: pathlib.Path) -> None:
    recorder = Recorder(tmp_path / "x.wav")
    with pytest.raises(RuntimeError, match="no tracks"):
        await recorder.start()
    with pytest.raises(TypeError, match="not a track"):
        recorder.add_track("microphone")


async def test_fanout_survives_a_failing_process_hook(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def process(frame: av.AudioFrame) -> av.AudioFrame:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("odd frame")
        return frame

    source = AudioPushTrack(sample_rate=8000)
    tap = Fanout(source, process).subscribe()
    await source.write(np.zeros(320, dtype=np.int16))
    assert [(await tap.recv()).pts, (await tap.recv()).pts] == [0, 160]
    assert "odd frame" in caplog.text


async def test_fanout_pauses_without_readers_and_keeps_unread_frames() -> None:
    source = AudioPushTrack(sample_rate=8000)
    fanout = Fanout(source)
    await source.write(np.zeros(160 * 3, dtype=np.int16))
    first = fanout.subscribe()
    assert (await first.recv()).pts == 0
    first.stop()
    for _ in range(500):  # the reader finishes the frame it waits for, then pauses
        if fanout._task is None:
            break
        await asyncio.sleep(0.01)
    assert fanout._task is None and not fanout.ended
    second = fanout.subscribe()
    assert (await second.recv()).pts == 320  # frame 160 went to nobody; 320 waited
    fanout.close()


async def test_started_fanout_reads_without_readers() -> None:
    source = AudioPushTrack(sample_rate=8000, buffer_ms=20)  # one frame of buffer
    fanout = Fanout(source)
    fanout.start()
    for _ in range(3):  # each write needs the reader to take the previous frame
        await asyncio.wait_for(source.write(np.zeros(160, dtype=np.int16)), 5)
    fanout.close()
