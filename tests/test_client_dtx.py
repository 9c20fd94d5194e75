"""Opus DTX of rtcroom's own client (issue 8: "Audio: opus (with the publisher's DTX)"), end to
end: with ``dtx`` on (the default, as in twilio-video.js) a publisher pausing between two
stretches of a tone sends, once its 200 ms hangover is over, one packet per 400 ms, so in a
group room the SFU receives, and the subscriber gets, a handful of packets for the pause,
numbered on without a gap while their timestamps skip what was not sent; the tone decodes again
after it. With ``{"codec": "opus", "dtx": False}`` the pause is sent as any audio, 50 packets a
second. Peer to peer, the other participant gets the same handful."""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import av
import numpy as np
import pytest
import rtcroom
from loopback_peers import ToneTrack
from rtcroom.aiortc_ext.dtx import HANGOVER, KEEPALIVE, SILENCE_LEVEL
from serverutil import loopback_ice, running_server, wait_until  # noqa: F401
from test_group_room import join, received, tone_frequency

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(180)]

FRAME = 960
PAUSE = 100
"""Frames of the pause: 2 s."""
HANGOVER_FRAMES = HANGOVER // FRAME
KEEPALIVES = (PAUSE - HANGOVER_FRAMES) // (KEEPALIVE // FRAME)
QUIET = 40
"""RFC 6464 levels above this (quieter than -40 dBov) are the pause's; the tone is near 13."""


class PausingTone(ToneTrack):
    """The tone; once asked, a pause of PAUSE frames of faint noise (peaks below the DTX
    threshold, so not digital silence); then the tone again."""

    def __init__(self, frequency: float) -> None:
        super().__init__(frequency)
        self.pause_asked = False
        self.paused = 0
        self.resumed = asyncio.Event()
        self._rng = np.random.default_rng(7)

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        if not self.pause_asked or self.paused == PAUSE:
            if self.paused == PAUSE:
                self.resumed.set()
            return frame
        self.paused += 1
        noise = self._rng.integers(-(SILENCE_LEVEL - 10), SILENCE_LEVEL - 10, frame.samples)
        quiet = av.AudioFrame.from_ndarray(noise.astype(np.int16).reshape(1, -1), format="s16",
                                           layout="mono")
        quiet.sample_rate, quiet.pts = frame.sample_rate, frame.pts
        quiet.time_base = fractions.Fraction(1, frame.sample_rate)
        return quiet


def _record_subscriber(room: rtcroom.Room) -> list[tuple[int, int, int]]:
    """(sequence number, timestamp, RFC 6464 level) of each audio packet ``room`` receives."""
    arrived: list[tuple[int, int, int]] = []
    # Peer to peer, the room may hold more than one connection: only the publisher's carries audio.
    for _, pc in room._signaling.pcs.connections():  # type: ignore[union-attr]
        for receiver in pc.getReceivers():
            if receiver.track.kind != "audio":
                continue

            async def record(packet: Any, arrival_time_ms: int,
                             handle: Any = receiver._handle_rtp_packet) -> None:
                level = packet.extensions.audio_level
                arrived.append((packet.sequence_number, packet.timestamp,
                                127 if level is None else level[1]))
                await handle(packet, arrival_time_ms)

            receiver._handle_rtp_packet = record
    return arrived


def _record_sfu(server: Any, room: rtcroom.Room) -> list[int]:
    """RFC 6464 level of each packet the SFU receives from ``room``'s audio track."""
    group = server.service.media.rooms[room.sid]
    [track] = group.router.tracks.values()
    levels: list[int] = []
    original = track.on_audio_level

    def record(level: int, now: float) -> None:
        levels.append(level)
        if original is not None:
            original(level, now)

    track.on_audio_level = record
    return levels


def _pause(levels: list[int]) -> tuple[int, int]:
    """Where the pause's packets are in ``levels``: (first, end), the tone on both sides."""
    quiet = [i for i, level in enumerate(levels) if level > QUIET]
    first, last = quiet[0], quiet[-1]
    assert first > 0 and last + 1 < len(levels), levels
    return first, last + 1


@pytest.mark.parametrize(("room_type", "dtx"), [("group", True), ("group", False),
                                               ("peer-to-peer", True)])
async def test_a_pause_is_sent_as_dtx_or_in_full(room_type: str, dtx: bool) -> None:
    tone = PausingTone(700)
    codecs = [] if dtx else [{"codec": "opus", "dtx": False}]
    group = room_type == "group"
    async with running_server(room_type=room_type) as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalAudioTrack(tone)],
                           preferred_audio_codecs=codecs)
        bob = await join(server, "bob", tracks=[])
        try:
            await wait_until(lambda: "audio" in received(bob).get("alice", {}), 30)
            audio = received(bob)["alice"]["audio"]
            assert abs(await asyncio.wait_for(tone_frequency(audio), 20) - 700) < 10
            at_sfu = _record_sfu(server, alice) if group else []
            at_bob = _record_subscriber(bob)
            # Some of the tone first, on each side.
            await wait_until(lambda: (len(at_sfu) > 5 or not group) and len(at_bob) > 5, 10)
            tone.pause_asked = True
            await asyncio.wait_for(tone.resumed.wait(), 30)
            # The tone decodes again after the pause.
            assert abs(await asyncio.wait_for(tone_frequency(audio), 20) - 700) < 10
            await wait_until(lambda: bool(at_bob) and at_bob[-1][2] <= QUIET, 10)
        finally:
            await bob.disconnect()
            await alice.disconnect()

    if group:
        first, end = _pause(at_sfu)
        sfu_quiet = end - first
    first, end = _pause([level for _, _, level in at_bob])
    pause = at_bob[first - 1:end + 1]  # with the tone's last packet before and first after
    seq_steps = [(b[0] - a[0]) & 0xFFFF for a, b in zip(pause, pause[1:])]
    ts_steps = [((b[1] - a[1]) & 0xFFFFFFFF) // FRAME for a, b in zip(pause, pause[1:])]
    print(f"\n{room_type}, dtx {dtx}: " + (f"{sfu_quiet} packets of the pause at the SFU, "
          if group else "") + f"{end - first} at the subscriber; frames between the "
          f"subscriber's packets: {ts_steps}")
    # The timestamps cover the whole pause (its frames and the tone's first frame after it),
    # sent or not.
    assert sum(ts_steps) == PAUSE + 1
    # A packet lost on a loaded machine's loopback skips a sequence number; nothing else does.
    assert all(0 < step <= 2 for step in seq_steps)
    assert sum(seq_steps) - len(seq_steps) <= 2
    if dtx:
        # The hangover, then one packet per 400 ms; not one for each of the pause's frames.
        assert not group or HANGOVER_FRAMES + KEEPALIVES - 2 <= sfu_quiet <= (
            HANGOVER_FRAMES + KEEPALIVES)
        assert HANGOVER_FRAMES + KEEPALIVES - 2 <= end - first <= HANGOVER_FRAMES + KEEPALIVES
        assert ts_steps[:HANGOVER_FRAMES - 2] == [1] * (HANGOVER_FRAMES - 2)
        gaps = [step for step in ts_steps if step > 2]
        assert KEEPALIVES - 1 <= len(gaps) <= KEEPALIVES + 1
        assert all(step <= KEEPALIVE // FRAME for step in gaps)
    else:
        assert PAUSE - 3 <= sfu_quiet <= PAUSE
        assert PAUSE - 3 <= end - first <= PAUSE
        assert max(ts_steps) <= 3
