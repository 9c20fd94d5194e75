"""Group rooms end to end: a real rtcroom server whose SFU forwards the media of real rtcroom
clients (aiortc) on 127.0.0.1; each participant has one peer connection, to the server."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
import pytest
import rtcroom
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from loopback_peers import PatternTrack, ToneTrack, dominant_frequency, looks_like_pattern
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


@pytest.fixture
def encoder_calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Calls to the VP8 and Opus encoders, by (class name, instance id)."""
    calls: Counter = Counter()
    for cls in (Vp8Encoder, OpusEncoder):
        original = cls.encode

        def counted(self, *args, _original=original, _name=cls.__name__, **kwargs):
            calls[(_name, id(self))] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "encode", counted)
    return calls


def received(room: rtcroom.Room) -> dict[str, dict[str, Any]]:
    """identity -> {kind: RemoteTrack} of what ``room`` receives."""
    out: dict[str, dict[str, Any]] = {}
    for p in room.participants.values():
        for pub in p.tracks.values():
            if pub.track is not None:
                out.setdefault(p.identity, {})[str(pub.kind)] = pub.track
    return out


async def tone_frequency(track: Any, seconds: float = 0.5) -> float:
    chunks: list[np.ndarray] = []
    total, rate, skipped = 0, 48000, 0
    async for frame in track.frames():
        if skipped < 10:  # the decoder's first output may still ramp up
            skipped += 1
            continue
        rate = frame.sample_rate
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        chunks.append(samples.astype(np.float64))
        total += len(samples)
        if total >= seconds * rate:
            break
    return dominant_frequency(np.concatenate(chunks), rate)


async def pattern_frames(track: Any, count: int) -> list[Any]:
    frames = []
    async for frame in track.frames():
        if looks_like_pattern(frame):
            frames.append(frame)
            if len(frames) == count:
                break
    return frames


async def join(server: Any, identity: str, **options: Any) -> rtcroom.Room:
    return await rtcroom.connect(token(identity), server=server.url, name="room", **options)


async def test_three_participants_receive_each_others_audio_video_and_data(
        encoder_calls: Counter) -> None:
    frequencies = {"p0": 500.0, "p1": 800.0, "p2": 1200.0}
    videos = {name: PatternTrack(160, 120) for name in frequencies}
    data = {name: rtcroom.LocalDataTrack() for name in frequencies}
    async with running_server(room_type="group") as server:
        rooms = {}
        for name, frequency in frequencies.items():
            rooms[name] = await join(server, name, tracks=[
                rtcroom.LocalAudioTrack(ToneTrack(frequency)),
                rtcroom.LocalVideoTrack(videos[name]), data[name]])
        try:
            for name, room in rooms.items():
                others = [n for n in frequencies if n != name]
                await wait_until(lambda: all(len(received(room).get(o, {})) == 3
                                             for o in others), 60)
            for name, room in rooms.items():
                # One connection per participant, to the server.
                assert len(room._signaling.pcs.connections()) == 1  # type: ignore[union-attr]
                for other, tracks in received(room).items():
                    assert abs(await asyncio.wait_for(tone_frequency(tracks["audio"]), 20)
                               - frequencies[other]) < 10
                    frames = await asyncio.wait_for(pattern_frames(tracks["video"], 5), 20)
                    assert all((f.width, f.height) == (160, 120) for f in frames)

            messages: dict[str, list[Any]] = {name: [] for name in rooms}
            for name, room in rooms.items():
                for other, tracks in received(room).items():
                    tracks["data"].on("message",
                                      lambda m, t, name=name: messages[name].append(m))
            for name in rooms:
                data[name].send(f"hello from {name}")
            await wait_until(lambda: all(len(m) == 2 for m in messages.values()), 20)
            for name, got in messages.items():
                assert sorted(got) == sorted(f"hello from {o}" for o in rooms if o != name)

            # Each publisher encodes its video once per frame, for both subscribers: three VP8
            # encoders in the whole process (the server never encodes), each called at most
            # once per frame its source produced.
            vp8 = {k[1]: n for k, n in encoder_calls.items() if k[0] == "Vp8Encoder"}
            assert len(vp8) == 3
            assert sum(vp8.values()) <= sum(v.frames for v in videos.values())
            assert len([k for k in encoder_calls if k[0] == "OpusEncoder"]) == 3
        finally:
            for room in rooms.values():
                await room.disconnect()
