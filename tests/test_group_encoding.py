"""A publisher's bitrate caps (``max_audio_bitrate`` / ``max_video_bitrate`` at connect,
``LocalParticipant.set_parameters`` while connected) limit its encoders: measured as the bitrate
the SFU receives from it."""

from __future__ import annotations

import asyncio
import fractions
import statistics

import av
import numpy as np
import pytest
import rtcroom
from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack
from serverutil import loopback_ice, running_server, token, wait_until  # noqa: F401

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(180)]


class GrainTrack(VideoStreamTrack):
    """A gradient under light noise: detail enough for a VP8 encoder to use 500 kbps at 320x240
    and to fall to a lower budget (pure noise overshoots any budget at the highest quantizer)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._gradient = np.linspace(0, 200, width)[None, :, None].repeat(height, 0).repeat(3, 2)
        self._rng = np.random.default_rng(11)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.clip(self._gradient + self._rng.normal(0, 10, self._gradient.shape), 0, 255)
        frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), "rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class HissTrack(MediaStreamTrack):
    """White noise, 20 ms mono frames in real time: Opus spends its whole budget on it."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._rng = np.random.default_rng(13)
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._samples / 48000 - loop.time()))
        pcm = (self._rng.standard_normal(960) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, self._samples
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += 960
        return frame


async def received_bitrates(group, seconds: float = 4.0) -> dict[str, float]:
    """Median over ``seconds`` of the bits/s the SFU receives per track kind."""
    samples: dict[str, list[float]] = {"audio": [], "video": []}
    for _ in range(int(seconds / 0.5)):
        await asyncio.sleep(0.5)
        for track in group.router.tracks.values():
            if track.rates.rates:
                samples[track.kind].append(max(track.rates.rates.values()))
    return {kind: statistics.median(values) for kind, values in samples.items()}


async def test_caps_limit_the_publishers_encoders_and_change_while_connected() -> None:
    async with running_server(room_type="group") as server:
        publisher = await rtcroom.connect(
            token("publisher"), server=server.url, name="room",
            tracks=[rtcroom.LocalAudioTrack(HissTrack()), rtcroom.LocalVideoTrack(GrainTrack())],
            max_audio_bitrate=16_000, max_video_bitrate=150_000)
        try:
            group = server.service.media.rooms[publisher.sid]
            await wait_until(lambda: len(group.router.tracks) == 2 and all(
                t.rates.rates for t in group.router.tracks.values()), 30)
            await asyncio.sleep(2)  # past the first keyframe and the rate control's start
            capped = await received_bitrates(group)

            publisher.local_participant.set_parameters({"max_video_bitrate": 600_000})
            await asyncio.sleep(2)
            video_raised = await received_bitrates(group)

            publisher.local_participant.set_parameters({"max_audio_bitrate": None})
            await asyncio.sleep(2)
            audio_lifted = await received_bitrates(group)
            print(f"\nreceived bits/s: capped {capped}; video cap 600k {video_raised}; "
                  f"audio cap lifted {audio_lifted}")

            # RTP headers and keyframes on top of the encoders' targets.
            assert capped["video"] < 1.5 * 150_000
            assert capped["audio"] < 1.5 * 16_000
            assert video_raised["video"] > 2 * capped["video"]
            assert video_raised["audio"] < 1.5 * 16_000  # a cap left out stays
            assert audio_lifted["audio"] > 2 * capped["audio"]
            assert audio_lifted["video"] > 2 * capped["video"]
        finally:
            await publisher.disconnect()
