"""VP9 between Python participants: in a peer-to-peer room the participant that prefers it sends
it; in a group room the SFU receives it and forwards it as received, to a subscriber that was
there from the start and to one that joins later (its leg starts at a keyframe the SFU asks
the publisher for). Each receiver decodes the test pattern. ``max_video_bitrate`` and
``set_parameters`` cap a VP9 publisher's encoder as they do VP8's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import rtcroom
from loopback_peers import PatternTrack
from rtcroom.aiortc_ext.encoder import encoder_of
from rtcroom.aiortc_ext.repair import RepairingJitterBuffer
from rtcroom.aiortc_ext.rtp import negotiated_codecs
from rtcroom.aiortc_ext.vp9 import Vp9Encoder
from serverutil import loopback_ice, running_server, wait_until  # noqa: F401
from test_group_codecs import sent_codecs
from test_group_encoding import GrainTrack, HissTrack, received_bitrates
from test_group_room import join, pattern_frames, received

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


def video_senders(room: rtcroom.Room) -> list[Any]:
    """The transceivers that send ``room``'s participant's video, on every connection."""
    return [t for _, pc in room._signaling.pcs.connections()  # type: ignore[union-attr]
            for t in pc.getTransceivers()
            if t.kind == "video" and t.sender.track is not None]


async def test_p2p_a_participant_preferring_vp9_sends_it() -> None:
    async with running_server() as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalVideoTrack(PatternTrack())],
                           preferred_video_codecs=["VP9"])
        bob = await join(server, "bob", tracks=[])
        try:
            await wait_until(lambda: "video" in received(bob).get("alice", {}), 30)
            frames = await asyncio.wait_for(
                pattern_frames(received(bob)["alice"]["video"], 3), 30)
            assert len(frames) == 3
            [sender] = video_senders(alice)
            assert negotiated_codecs(sender)[0].mimeType == "video/VP9"
            assert isinstance(encoder_of(sender.sender), Vp9Encoder)
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_group_vp9_is_forwarded_to_every_subscriber(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Every VP9 payload the publisher's encoder made, and every one the subscribers' jitter
    # buffers took in: the SFU rewrites headers only, so the second are among the first (VP8's
    # picture id rewriting must not touch VP9's descriptor, whose first bits look alike).
    sent: set[bytes] = set()
    taken: list[bytes] = []
    packetize = Vp9Encoder._packetize

    def recording_packetize(self: Vp9Encoder, data: bytes) -> list[bytes]:
        payloads = packetize(self, data)
        sent.update(payloads)
        return payloads

    add = RepairingJitterBuffer.add

    def recording_add(self: RepairingJitterBuffer, packet: Any) -> Any:
        codec = self.codecs.get(packet.payload_type)
        if codec is not None and codec.mimeType == "video/VP9":
            taken.append(packet.payload)
        return add(self, packet)

    monkeypatch.setattr(Vp9Encoder, "_packetize", recording_packetize)
    monkeypatch.setattr(RepairingJitterBuffer, "add", recording_add)
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalVideoTrack(PatternTrack())],
                           preferred_video_codecs=["VP9"])
        bob = await join(server, "bob", tracks=[rtcroom.LocalVideoTrack(PatternTrack())])
        rooms = [alice, bob]
        try:
            await wait_until(lambda: "video" in received(bob).get("alice", {}), 30)
            assert len(await asyncio.wait_for(
                pattern_frames(received(bob)["alice"]["video"], 3), 30)) == 3
            # Once alice has been sending a while, a new subscriber needs a keyframe to start.
            carol = await join(server, "carol", tracks=[])
            rooms.append(carol)
            await wait_until(lambda: all("video" in received(carol).get(p, {})
                                         for p in ("alice", "bob")), 30)
            assert len(await asyncio.wait_for(
                pattern_frames(received(carol)["alice"]["video"], 3), 30)) == 3
            assert sent_codecs(server, alice) == {"video": "video/VP9"}
            assert sent_codecs(server, bob) == {"video": "video/VP8"}
            [sender] = video_senders(alice)
            assert isinstance(encoder_of(sender.sender), Vp9Encoder)
            group = server.service.media.rooms[alice.sid]
            alice_track = next(iter(alice.local_participant.tracks.values())).track_sid
            for subscriber in (bob, carol):
                leg = group.peers[subscriber.local_participant.sid].legs[alice_track]
                assert negotiated_codecs(leg.transceiver)[0].mimeType == "video/VP9"
            # The VP8 publisher's track is still VP8 on carol's leg: one codec per track.
            bob_track = next(iter(bob.local_participant.tracks.values())).track_sid
            leg = group.peers[carol.local_participant.sid].legs[bob_track]
            assert negotiated_codecs(leg.transceiver)[0].mimeType == "video/VP8"
            assert len(await asyncio.wait_for(
                pattern_frames(received(carol)["bob"]["video"], 3), 30)) == 3
            # A pause and a resume: the leg starts again at a keyframe, its sequence numbers
            # and timestamps continuing; VP8 picture ids would be shifted here, VP9's are not.
            subscription = group.peers[carol.local_participant.sid].legs[
                alice_track].subscription
            published = group.router.tracks[alice_track]
            subscription.pause()
            paused_at = published.packets_received
            await wait_until(lambda: published.packets_received > paused_at + 30, 30)
            subscription.resume()
            resumed_at = len(taken)
            assert len(await asyncio.wait_for(
                pattern_frames(received(carol)["alice"]["video"], 3), 30)) == 3
            assert len(taken) > resumed_at and all(payload in sent for payload in taken)
        finally:
            for room in rooms:
                await room.disconnect()


async def test_group_a_vp9_publishers_bitrate_cap_holds_and_changes() -> None:
    async with running_server(room_type="group") as server:
        publisher = await join(server, "publisher", tracks=[
            rtcroom.LocalAudioTrack(HissTrack()), rtcroom.LocalVideoTrack(GrainTrack())],
            preferred_video_codecs=["VP9"], max_video_bitrate=150_000)
        try:
            group = server.service.media.rooms[publisher.sid]
            await wait_until(lambda: len(group.router.tracks) == 2 and all(
                t.rates.rates for t in group.router.tracks.values()), 30)
            assert sent_codecs(server, publisher)["video"] == "video/VP9"
            await asyncio.sleep(2)  # past the first keyframe and the rate control's start
            capped = (await received_bitrates(group))["video"]
            publisher.local_participant.set_parameters({"max_video_bitrate": 600_000})
            await asyncio.sleep(2)
            raised = (await received_bitrates(group))["video"]
            print(f"\nVP9 received bits/s: capped at 150k {capped:.0f}, at 600k {raised:.0f}")
            assert capped < 1.5 * 150_000  # RTP headers and keyframes on top of the target
            assert raised > 2 * capped
        finally:
            await publisher.disconnect()
