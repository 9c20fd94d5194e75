"""A group room whose server paces what it sends (the default; ``pacing=False``,
``RTCROOM_PACING=0`` turn it off): the video each subscriber receives leaves through that
subscriber's native pacer and still decodes; audio goes straight out."""

from __future__ import annotations

import asyncio

import rtcroom
from loopback_peers import PatternTrack, ToneTrack, looks_like_pattern
from rtcroom.server.grouproom import _MediaLeg
from serverutil import running_server, token, wait_until
from test_connect_p2p import subscribed_tracks as received


async def test_paced_server_forwards_video_through_each_subscribers_pacer() -> None:
    async with running_server(room_type="group") as server:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(500)), rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
        bob = await rtcroom.connect(token("bob"), server=server.url, name="room", tracks=[])
        try:
            await wait_until(lambda: len(received(bob).get("alice", {})) == 2, 30)
            frames = 0
            async for frame in received(bob)["alice"]["video"].frames():
                frames += looks_like_pattern(frame)
                if frames == 5:
                    break
            group = server.service.media.rooms[alice.sid]
            peer = next(p for p in group.peers.values() if p.sid == bob.local_participant.sid)
            assert peer.pacer is not None and peer.pacer.sent_packets > 0
            legs = {leg.subscription.track.kind: leg.subscription for leg in peer.legs.values()
                    if isinstance(leg, _MediaLeg)}
            video, audio = legs["video"], legs["audio"]
            # Video through the connection's pacing sink, audio through a sink of its own.
            assert peer.pacer.sink is not None and video._sink is peer.pacer.sink
            assert audio.forwarder is not None and audio.forwarder.attached
            assert audio._sink is not peer.pacer.sink
            paced = peer.pacer.sent_packets
            await asyncio.sleep(0.5)
            assert peer.pacer.sent_packets > paced  # still flowing through it
            assert peer.pacer.dropped_packets() == 0
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_unpaced_server_sends_video_without_a_pacer() -> None:
    async with running_server(room_type="group", pacing=False) as server:
        alice = await rtcroom.connect(token("alice"), server=server.url, name="room", tracks=[
            rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
        bob = await rtcroom.connect(token("bob"), server=server.url, name="room", tracks=[])
        try:
            await wait_until(lambda: len(received(bob).get("alice", {})) == 1, 30)
            async for frame in received(bob)["alice"]["video"].frames():
                if looks_like_pattern(frame):
                    break
            group = server.service.media.rooms[alice.sid]
            peer = next(p for p in group.peers.values() if p.sid == bob.local_participant.sid)
            video = next(leg.subscription for leg in peer.legs.values()
                         if isinstance(leg, _MediaLeg))
            assert peer.pacer is None
            assert video.forwarder is not None and video.forwarder.attached
        finally:
            await bob.disconnect()
            await alice.disconnect()
