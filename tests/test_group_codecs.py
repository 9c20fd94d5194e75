"""Codec preferences in group rooms: a publisher's ``preferred_audio_codecs`` /
``preferred_video_codecs`` choose what it sends (VP8 or H.264, Opus or PCMU); the SFU offers
each subscriber the publisher's codec first and forwards it as received; a subscriber that
cannot take it gets 53404 on that subscription and keeps the others."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
import rtcroom
from loopback_peers import PatternTrack, ToneTrack
from rtcroom.aiortc_ext.rtp import negotiated_codecs
from rtcroom.client.codecs import codec_preferences
from rtcroom.client.groupconnection import GroupPeerConnection
from rtcroom.signaling.messages import SessionDescription
from serverutil import loopback_ice, running_server, wait_until  # noqa: F401
from test_group_room import join, pattern_frames, received, tone_frequency
from test_server_rest import call

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


def test_preferences_reorder_and_keep_the_other_codecs() -> None:
    names = [c.mimeType for c in codec_preferences("video", ["h264"])]
    assert names[:2] == ["video/H264", "video/H264"] and names[2] == "video/VP8"
    assert names[-1] == "video/rtx"
    names = [c.mimeType for c in codec_preferences("audio", ["PCMU", "isac"])]
    assert names[0] == "audio/PCMU" and set(names) == {"audio/PCMU", "audio/opus",
                                                       "audio/G722", "audio/PCMA"}


def sent_codecs(server: Any, room: rtcroom.Room) -> dict[str, str]:
    """kind -> the mime type the SFU receives from ``room``'s participant."""
    group = server.service.media.rooms[room.sid]
    sids = {pub.track_sid: str(pub.kind) for pub in room.local_participant.tracks.values()}
    return {sids[sid]: t.codecs[0].mimeType for sid, t in group.router.tracks.items()
            if sid in sids}


async def test_preferred_codecs_are_sent_and_forwarded_as_they_are() -> None:
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(500)), rtcroom.LocalVideoTrack(PatternTrack())],
            preferred_audio_codecs=["PCMU"], preferred_video_codecs=["H264"])
        bob = await join(server, "bob", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(900)), rtcroom.LocalVideoTrack(PatternTrack())])
        carol = await join(server, "carol", tracks=[])
        rooms = [alice, bob, carol]
        try:
            await wait_until(lambda: all(len(received(carol).get(p, {})) == 2
                                         for p in ("alice", "bob")), 60)
            assert sent_codecs(server, alice) == {"audio": "audio/PCMU", "video": "video/H264"}
            assert sent_codecs(server, bob) == {"audio": "audio/opus", "video": "video/VP8"}
            # Each of carol's legs carries the publisher's codec: nothing to transcode.
            group = server.service.media.rooms[carol.sid]
            legs = group.peers[carol.local_participant.sid].legs
            for sid, leg in legs.items():
                assert (negotiated_codecs(leg.transceiver)[0].mimeType
                        == group.router.tracks[sid].codecs[0].mimeType)
            for name, frequency in (("alice", 500), ("bob", 900)):
                tracks = received(carol)[name]
                assert abs(await asyncio.wait_for(tone_frequency(tracks["audio"]), 20)
                           - frequency) < 15
                assert len(await asyncio.wait_for(pattern_frames(tracks["video"], 3), 20)) == 3
        finally:
            for room in rooms:
                await room.disconnect()


def without_codec(sdp: str, name: str) -> str:
    """``sdp`` with codec ``name`` (and the RTX repairing it) taken out of every m-line, as
    from a receiver that does not have it."""
    gone = {pt for pt, codec in re.findall(r"a=rtpmap:(\d+) ([\w-]+)/", sdp)
            if codec.lower() == name.lower()}
    gone |= {pt for pt, apt in re.findall(r"a=fmtp:(\d+) apt=(\d+)", sdp) if apt in gone}
    lines = []
    for line in sdp.splitlines():
        m = re.match(r"a=(?:rtpmap|fmtp|rtcp-fb):(\d+)", line)
        if m and m.group(1) in gone:
            continue
        if line.startswith("m="):
            head, *formats = line.split(" ")
            line = " ".join([head, *formats[:2], *(f for f in formats[2:] if f not in gone)])
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


async def test_a_subscriber_without_the_publishers_codec_gets_53404_on_that_track(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(500)), rtcroom.LocalVideoTrack(PatternTrack())],
            preferred_video_codecs=["H264"])
        rooms = [alice]
        answer_offer = GroupPeerConnection._answer_offer

        async def no_h264(self: GroupPeerConnection, description: SessionDescription) -> None:
            description.sdp = without_codec(description.sdp or "", "H264")
            await answer_offer(self, description)

        monkeypatch.setattr(GroupPeerConnection, "_answer_offer", no_h264)
        try:
            carol = await join(server, "carol", tracks=[])
            rooms.append(carol)
            failures: list[Any] = []
            carol.on("track_subscription_failed",
                     lambda error, pub, participant: failures.append((error, pub)))
            await wait_until(lambda: "audio" in received(carol).get("alice", {}), 30)
            await wait_until(lambda: failures, 30)
            error, publication = failures[0]
            assert error.code == 53404 and "video/H264" in error.message
            assert str(publication.kind) == "video" and publication.track is None
            # The audio keeps coming; the video is not offered again.
            audio = received(carol)["alice"]["audio"]
            assert abs(await asyncio.wait_for(tone_frequency(audio), 20) - 500) < 15
            peer = server.service.media.rooms[carol.sid].peers[carol.local_participant.sid]
            assert [str(p.kind) for p in alice.local_participant.tracks.values()
                    if p.track_sid in peer.legs] == ["audio"]
            assert len(failures) == 1
            # New subscribe rules try it again (and it fails again, the same way).
            async with aiohttp.ClientSession() as http:
                status, _ = await call(
                    http, "POST", f"{server.http_url}/v1/Rooms/{carol.sid}/Participants/carol/"
                    "SubscribeRules", data={"Rules": '[{"type": "include", "all": true}]'})
            assert status == 200
            await wait_until(lambda: len(failures) == 2, 30)
            assert failures[1][0].code == 53404 and failures[1][1] is publication
        finally:
            for room in rooms:
                await room.disconnect()
