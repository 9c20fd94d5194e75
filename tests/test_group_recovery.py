"""A participant's connection to the SFU fails (ICE consent lost): it starts over on a fresh
connection (aiortc cannot restart ICE), the room goes ``reconnecting`` then ``reconnected``, and
media flows again both ways."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import rtcroom
from loopback_peers import PatternTrack, ToneTrack
from serverutil import loopback_ice, running_server, wait_until  # noqa: F401
from test_group_room import join, pattern_frames, received, tone_frequency

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(180)]


@pytest.mark.parametrize("broken", ["subscriber", "publisher"])
async def test_a_failed_connection_to_the_sfu_is_replaced(monkeypatch: Any, broken: str) -> None:
    # Consent freshness (RFC 7675) declares a path dead after 6 x 5 s; shrink that so the test
    # sees a failure in about a second instead of half a minute.
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(600)), rtcroom.LocalVideoTrack(PatternTrack())])
        bob = await join(server, "bob", tracks=[rtcroom.LocalAudioTrack(ToneTrack(900))])
        rooms = [alice, bob]
        try:
            await wait_until(lambda: len(received(bob).get("alice", {})) == 2
                             and len(received(alice).get("bob", {})) == 1, 30)
            victim = bob if broken == "subscriber" else alice
            states: list[str] = []
            victim.on("reconnecting", lambda error: states.append(f"reconnecting {error.code}"))
            victim.on("reconnected", lambda: states.append("reconnected"))
            before = received(bob)["alice"]["audio"].media_stream_track
            peer = server.service.media.rooms[alice.sid].peers[victim.local_participant.sid]
            measured = (peer.estimator, peer.meter, peer.scorer)
            pc = victim._signaling.pcs.pc  # type: ignore[union-attr]
            # Kill the victim's end of the path without a goodbye: its ICE stops answering.
            await pc.getTransceivers()[0].receiver.transport.transport.stop()
            try:
                await wait_until(lambda: states == ["reconnecting 53405", "reconnected"], 60)
            except AssertionError:
                raise AssertionError(f"the victim's room went {states}") from None
            assert victim._signaling.pcs.pc is not pc  # type: ignore[union-attr]
            # What the server measured of the failed connection's path starts over.
            assert all(a is not b for a, b in zip(
                (peer.estimator, peer.meter, peer.scorer), measured))
            # Media flows again both ways, on new receivers.
            await wait_until(lambda: len(received(bob).get("alice", {})) == 2
                             and received(bob)["alice"]["audio"].media_stream_track
                             is not before, 30)
            tracks = received(bob)["alice"]
            assert abs(await asyncio.wait_for(tone_frequency(tracks["audio"]), 20) - 600) < 10
            assert len(await asyncio.wait_for(pattern_frames(tracks["video"], 3), 20)) == 3
            await wait_until(lambda: "audio" in received(alice).get("bob", {}), 30)
            assert abs(await asyncio.wait_for(
                tone_frequency(received(alice)["bob"]["audio"]), 20) - 900) < 10
            assert alice.state == bob.state == rtcroom.RoomState.CONNECTED
        finally:
            for room in rooms:
                await room.disconnect()
