"""Opus DTX through the SFU (issue 8): a publisher that stops sending during silence, as Opus DTX
does, is forwarded as it is. The subscriber gets no packet for the silence (its sequence numbers
run on without a gap while the timestamps jump over it, as the publisher's do), and the tone
decodes again after it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from loopback_peers import ToneTrack, dominant_frequency, loopback_only
from rtcroom.server.sfu import Router
from sfu_room import add_publisher, add_subscriber, close_all, connect_all

pytestmark = pytest.mark.timeout(120)

SAMPLE_RATE = 48000
FRAME = 960
SILENT_FRAMES = 50
"""One second without packets."""


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


class DtxTone(ToneTrack):
    """A tone that goes silent, as a DTX sender does, once asked: for SILENT_FRAMES frames it
    sends nothing (the next frame comes that much later, its timestamp that much further)."""

    silence_asked = False
    silenced = False

    async def recv(self):
        if self.silence_asked and not self.silenced:
            self.silenced = True
            self._samples += SILENT_FRAMES * FRAME
        return await super().recv()


async def _frequency(track, frames: int = 40) -> float:
    for _ in range(10):  # the decoder's ramp
        await asyncio.wait_for(track.recv(), 10)
    samples = []
    for _ in range(frames):
        frame = await asyncio.wait_for(track.recv(), 10)
        samples.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0])
    return dominant_frequency(np.concatenate(samples).astype(np.float64), SAMPLE_RATE)


async def test_silence_without_packets_is_forwarded_as_it_is() -> None:
    router = Router()
    tone = DtxTone(700)
    pub = await add_publisher(router, "speaker", [tone])
    sid = pub.tracks[0].sid
    sub = await add_subscriber(router, "listener", [sid])
    receiver = sub.client.getTransceivers()[0].receiver
    handle = receiver._handle_rtp_packet
    arrived: list[tuple[int, int]] = []

    async def record(packet, arrival_time_ms):
        arrived.append((packet.sequence_number, packet.timestamp))
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = record
    try:
        await connect_all([pub], [sub])
        assert abs(await _frequency(sub.remote_tracks[sid]) - 700) < 10
        tone.silence_asked = True
        # The tone again after the silence, decoded.
        assert abs(await _frequency(sub.remote_tracks[sid]) - 700) < 10
        leg = sub.subscriptions[0]
        assert leg.packets_sent >= len(arrived) > 0

        steps = [((b[0] - a[0]) & 0xFFFF, (b[1] - a[1]) & 0xFFFFFFFF)
                 for a, b in zip(arrived, arrived[1:])]
        # Each packet is one frame on from the one before it per sequence number (a packet
        # lost on a loaded machine's loopback skips both alike), except once: across the
        # silence, the sequence number moves on by one while the timestamp skips it.
        assert all(0 < seq < 100 for seq, _ in steps)
        jumps = [(seq, ts) for seq, ts in steps if ts != seq * FRAME]
        assert jumps == [(1, (SILENT_FRAMES + 1) * FRAME)]
    finally:
        await close_all(router, [pub], [sub])
