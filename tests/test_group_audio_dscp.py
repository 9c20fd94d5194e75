"""Issue 8 items of group rooms not shown elsewhere with rtcroom's own client: every audio codec
a publisher may prefer (Opus, PCMU, PCMA) is sent and forwarded as it is to a subscriber that
decodes the tone, and ``enable_dscp`` marks the client's own socket to the SFU."""

from __future__ import annotations

import asyncio

import pytest
import rtcroom
from loopback_peers import ToneTrack
from rtcroom.aiortc_ext.ice import udp_endpoints
from rtcroom.aiortc_ext.rtp import negotiated_codecs
from rtcroom.dscp import AUDIO_TRAFFIC_CLASS, get_traffic_class
from serverutil import loopback_ice, running_server, wait_until  # noqa: F401
from test_group_room import join, received, tone_frequency

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(180)]


@pytest.mark.parametrize("codec", ["opus", "PCMU", "PCMA"])
async def test_each_audio_codec_is_forwarded_as_sent(codec: str) -> None:
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalAudioTrack(ToneTrack(700))],
                           preferred_audio_codecs=[codec])
        bob = await join(server, "bob", tracks=[])
        try:
            await wait_until(lambda: "audio" in received(bob).get("alice", {}), 30)
            group = server.service.media.rooms[alice.sid]
            [track] = group.router.tracks.values()
            assert track.codecs[0].mimeType.lower() == f"audio/{codec}".lower()
            [leg] = group.peers[bob.local_participant.sid].legs.values()
            assert negotiated_codecs(leg.transceiver)[0].mimeType == track.codecs[0].mimeType
            # Through G.711's 8 kHz too, the tone is heard at its frequency.
            frequency = await asyncio.wait_for(
                tone_frequency(received(bob)["alice"]["audio"]), 20)
            assert abs(frequency - 700) < 15
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_enable_dscp_marks_the_clients_socket_to_the_sfu() -> None:
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", enable_dscp=True,
                           tracks=[rtcroom.LocalAudioTrack(ToneTrack(500))])
        bob = await join(server, "bob", tracks=[rtcroom.LocalAudioTrack(ToneTrack(900))])
        try:
            await wait_until(lambda: "alice" in received(bob) and "bob" in received(alice), 30)

            def classes(room: rtcroom.Room) -> set[int]:
                pcs = room._signaling.pcs.connections()  # type: ignore[union-attr]
                return {get_traffic_class(e.socket) for _, pc in pcs for e in udp_endpoints(pc)}

            # Audio only: the connection's socket carries the audio class.
            assert classes(alice) == {AUDIO_TRAFFIC_CLASS}
            assert classes(bob) == {0}
            # The server was not asked to mark its sockets.
            assert {get_traffic_class(e.socket) for peer in
                    server.service.media.rooms[alice.sid].peers.values() if peer.pc is not None
                    for e in udp_endpoints(peer.pc)} == {0}
        finally:
            await bob.disconnect()
            await alice.disconnect()
