"""A group room's video codec list (Twilio's ``VideoCodecs``): set on REST create (group rooms
only), the server's default for the others, shown as ``video_codecs``; the SFU answers a
publisher's video with the listed codecs only, and a track offering none of them fails with
53404 while the publisher's other tracks flow."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
import rtcroom
from aiortc import RTCRtpSender
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_peers import HEIGHT, WIDTH, PatternTrack, ToneTrack
from rtcroom.aiortc_ext.rtp import negotiated_codecs
from rtcroom.aiortc_ext.simulcast import simulcast_of
from rtcroom.client import groupconnection
from rtcroom.errors import MediaNoSupportedCodecError
from rtcroom.server.config import ConfigError, load_config
from rtcroom.server.rooms import Room
from rtcroom.server.videocodecs import (
    forwardable_video_codecs,
    parse_video_codecs,
    restrict_video_codecs,
)
from rtcroom.signaling.messages import ClientUpdate, ParticipantState, TrackState
from serverutil import loopback_ice, running_server, wait_until  # noqa: F401
from test_group_codecs import sent_codecs
from test_group_room import join, pattern_frames, received, tone_frequency
from test_server_rest import call

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]

OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1 2",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "a=mid:0", "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99", "a=mid:1", "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 nack", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    "a=rtpmap:98 H264/90000", "a=fmtp:98 packetization-mode=1", "a=rtcp-fb:98 nack pli",
    "a=rtpmap:99 rtx/90000", "a=fmtp:99 apt=98",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=mid:2", "a=rtpmap:96 VP8/90000",
    "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", ""])


def test_restrict_keeps_the_listed_codecs_in_the_offers_order_with_their_rtx() -> None:
    sdp, refused = restrict_video_codecs(OFFER, ["H264"])
    audio, first, second = sdp.split("\r\nm=")[1:]
    assert audio == OFFER.split("\r\nm=")[1]  # audio has no codec list: untouched
    assert first.startswith("video 9 UDP/TLS/RTP/SAVPF 98 99\r\n")
    assert "VP8" not in first and "a=rtcp-fb:96" not in first and "apt=96" not in first
    assert "a=fmtp:98 packetization-mode=1" in first and "a=fmtp:99 apt=98" in first
    # The m-line with none of them is left whole, for the caller to refuse.
    assert refused == {"2": ["VP8"]} and second == OFFER.split("\r\nm=")[3]
    sdp, refused = restrict_video_codecs(OFFER, ["H264", "VP8"])
    assert sdp == OFFER and refused == {}
    assert restrict_video_codecs(OFFER, ["VP8"])[0].split("\r\nm=")[2].startswith(
        "video 9 UDP/TLS/RTP/SAVPF 96 97\r\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=audio 9 RTP/AVP 0", "m=video", "a=mid:1",
    "a=mid:", "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    "a=fmtp:98 apt=97", "a=rtpmap:96 H264", "a=rtcp-fb:96 nack", "a=rtpmap:x VP8/1", "\r",
    ""]), max_size=12), st.sampled_from([("VP8",), ("H264",), ("H264", "VP8")]))
def test_restrict_takes_any_text(lines: list[str], allowed: tuple[str, ...]) -> None:
    """Hostile offers reach it before aiortc's parser: it never raises, and never adds."""
    sdp = "v=0\r\n" + "\r\n".join(lines)
    out, refused = restrict_video_codecs(sdp, allowed)
    assert len(out) <= len(sdp) and set(out.split("\n")) <= set(sdp.split("\n")) | {
        line for line in out.split("\n") if line.startswith(("m=video", "video "))}


def test_names_are_the_forwarded_codecs_spelled_as_twilio() -> None:
    assert {"VP8", "H264"} <= set(forwardable_video_codecs())
    assert parse_video_codecs(["H264", "VP8", "H264"]) == ("H264", "VP8")
    for bad in (["vp8"], ["AV1"], []):
        with pytest.raises(ValueError, match="VideoCodecs"):
            parse_video_codecs(bad)


def test_the_server_default_comes_from_config() -> None:
    assert load_config(env={}).video_codecs is None
    config = load_config(env={"RTCROOM_VIDEO_CODECS": "H264, VP8"})
    assert config.video_codecs == ("H264", "VP8")
    assert load_config(env={}, video_codecs="VP8").video_codecs == ("VP8",)
    with pytest.raises(ConfigError, match=r"RTCROOM_VIDEO_CODECS.*'AV1' is not one of"):
        load_config(env={"RTCROOM_VIDEO_CODECS": "VP8,AV1"})


def test_a_refused_publication_stays_failed_while_the_client_lists_it() -> None:
    r = Room(unique_name="r", type="group", created_at=0.0, max_participants=10,
             empty_timeout=60, video_codecs=("VP8",))
    cam = TrackState(id="v1", kind="video", name="cam")
    mic = TrackState(id="a1", kind="audio", name="mic")
    alice, _ = r.join("alice", ParticipantState(1, [mic, cam]), now=1)
    bob, _ = r.join("bob", ParticipantState(1), now=2)
    out = r.publication_failed(alice.sid, alice.tracks["v1"].sid,
                               MediaNoSupportedCodecError("No supported codec: H264"))
    [update] = [o.message for o in out if o.participant_sid == alice.sid]
    assert [(t.id, t.state, t.error and t.error.code) for t in update.published.tracks] == [
        ("a1", "ready", None), ("v1", "failed", 53404)]
    [told] = [o.message for o in out if o.participant_sid == bob.sid]
    assert [t.kind for t in told.participants[0].tracks] == ["audio"]
    assert [t.kind for t in r.subscriptions(bob)] == ["audio"]
    # Its next state still lists the track (the failure crossed it): not published again.
    second = TrackState(id="a2", kind="audio", name="mic2")
    r.update(alice.sid, ClientUpdate(session=alice.session,
                                     participant=ParticipantState(2, [mic, cam, second])), now=3)
    assert sorted(alice.tracks) == ["a1", "a2"] and "v1" in alice.failed_publications
    # Once it drops the track, the failure is forgotten: the id may be published anew.
    r.update(alice.sid, ClientUpdate(session=alice.session,
                                     participant=ParticipantState(3, [mic])), now=4)
    assert alice.failed_publications == {}
    assert r.publication_failed(alice.sid, "MTgone", MediaNoSupportedCodecError()) == []


async def test_rest_video_codecs() -> None:
    async with running_server(room_type="group", video_codecs=("VP8",)) as server, \
            aiohttp.ClientSession() as http:
        rooms = f"{server.http_url}/v1/Rooms"
        status, body = await call(http, "POST", rooms, data=[
            ("UniqueName", "h264"), ("VideoCodecs", "H264"), ("VideoCodecs", "VP8")])
        assert status == 201 and body["video_codecs"] == ["H264", "VP8"], body
        status, body = await call(http, "GET", f"{rooms}/h264")
        assert status == 200 and body["video_codecs"] == ["H264", "VP8"]
        # Without the parameter a group room takes the server's default; a peer-to-peer room
        # has none (Twilio sets codecs on group rooms only).
        status, body = await call(http, "POST", rooms, data={"UniqueName": "plain"})
        assert status == 201 and body["video_codecs"] == ["VP8"]
        status, body = await call(http, "POST", rooms, data={"UniqueName": "p2p",
                                                             "Type": "peer-to-peer"})
        assert status == 201 and body["video_codecs"] is None
        for bad in ("AV1", "vp8", ""):
            status, body = await call(http, "POST", rooms, data=[("UniqueName", "bad"),
                                                                 ("VideoCodecs", bad)])
            assert status == 400 and body["code"] == 20001, body
            assert f"VideoCodecs: {bad!r} is not one of" in body["message"]
        for room_type in ("peer-to-peer", "go"):
            status, body = await call(http, "POST", rooms, data={
                "UniqueName": "bad", "Type": room_type, "VideoCodecs": "VP8"})
            assert status == 400 and body["code"] == 53114, body
            assert room_type in body["message"] and "VideoCodecs" in body["message"]
        status, body = await call(http, "GET", f"{rooms}/bad")
        assert status == 404
        status, document = await call(http, "GET", f"{server.http_url}/openapi.json")
        create = document["paths"]["/v1/Rooms"]["post"]["requestBody"]["content"]
        schema = next(iter(create.values()))["schema"]["properties"]["VideoCodecs"]
        assert set(schema["items"]["enum"]) == set(forwardable_video_codecs())


async def test_an_ad_hoc_room_takes_the_servers_default() -> None:
    async with running_server(room_type="group", video_codecs=("H264",)) as server, \
            aiohttp.ClientSession() as http:
        alice = await join(server, "alice", tracks=[])
        try:
            status, body = await call(http, "GET", f"{server.http_url}/v1/Rooms/{alice.sid}")
            assert status == 200 and body["video_codecs"] == ["H264"]
        finally:
            await alice.disconnect()


async def create(server: Any, *codecs: str) -> None:
    async with aiohttp.ClientSession() as http:
        status, body = await call(http, "POST", f"{server.http_url}/v1/Rooms", data=[
            ("UniqueName", "room"), *(("VideoCodecs", c) for c in codecs)])
    assert status == 201, body


@pytest.mark.parametrize("codec", ["H264", "VP9"])
async def test_a_publisher_preferring_vp8_sends_the_rooms_codec(codec: str) -> None:
    async with running_server(room_type="group") as server:
        await create(server, codec)
        alice = await join(server, "alice", tracks=[rtcroom.LocalVideoTrack(PatternTrack())],
                           preferred_video_codecs=["VP8"])
        carol = await join(server, "carol", tracks=[])
        try:
            await wait_until(lambda: "video" in received(carol).get("alice", {}), 60)
            assert sent_codecs(server, alice) == {"video": f"video/{codec}"}
            # The SFU's answer to alice kept the room's codec only (and its RTX).
            group = server.service.media.rooms[alice.sid]
            answer = group.peers[alice.local_participant.sid].pc.localDescription.sdp
            video = answer.split("\r\nm=video ")[1].split("\r\nm=")[0]
            assert set(re.findall(r"a=rtpmap:\d+ ([\w-]+)/", video)) == {codec, "rtx"}
            sid = next(iter(alice.local_participant.tracks))
            leg = group.peers[carol.local_participant.sid].legs[sid]
            assert negotiated_codecs(leg.transceiver)[0].mimeType == f"video/{codec}"
            frames = await asyncio.wait_for(
                pattern_frames(received(carol)["alice"]["video"], 3), 30)
            assert len(frames) == 3
        finally:
            for room in (alice, carol):
                await room.disconnect()


def only_h264(transceiver: Any, names: dict[str, list[str]]) -> None:
    """A publisher without VP8: its video m-lines offer H.264 (and RTX) only."""
    if transceiver.kind == "video":
        transceiver.setCodecPreferences([
            c for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType in ("video/H264", "video/rtx")])


async def test_a_publisher_without_the_rooms_codecs_fails_that_track_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(groupconnection, "prefer_codecs", only_h264)
    async with running_server(room_type="group") as server:
        await create(server, "VP8")
        failures: list[Any] = []
        video = rtcroom.LocalVideoTrack(PatternTrack())
        alice = await join(server, "alice",
                           tracks=[rtcroom.LocalAudioTrack(ToneTrack(500)), video])
        alice.local_participant.on("track_publication_failed",
                                   lambda error, track: failures.append((error, track)))
        carol = await join(server, "carol", tracks=[])
        try:
            await wait_until(lambda: failures, 30)
            error, track = failures[0]
            assert track is video and error.code == 53404
            assert "H264" in error.message and "VP8" in error.message
            assert [str(p.kind) for p in alice.local_participant.tracks.values()] == ["audio"]
            # Its audio flows; the others never see the video.
            await wait_until(lambda: "audio" in received(carol).get("alice", {}), 30)
            audio = received(carol)["alice"]["audio"]
            assert abs(await asyncio.wait_for(tone_frequency(audio), 20) - 500) < 15
            remote = carol.participants[alice.local_participant.sid]
            assert [str(p.kind) for p in remote.tracks.values()] == ["audio"]
            async with aiohttp.ClientSession() as http:
                status, body = await call(http, "GET", f"{server.http_url}/v1/Rooms/room/"
                                          "Participants/alice/PublishedTracks")
            assert status == 200 and [t["kind"] for t in body["published_tracks"]] == ["audio"]
            assert len(failures) == 1
        finally:
            for room in (alice, carol):
                await room.disconnect()


@pytest.mark.parametrize(("preferred", "room_codecs", "sent"), [
    (["VP9", {"codec": "VP8", "simulcast": True}], (), "VP9"),
    ([{"codec": "VP8", "simulcast": True}], ("H264",), "H264"),
])
async def test_simulcast_falls_back_to_one_stream_when_vp8_is_not_answered(
        preferred: list[Any], room_codecs: tuple[str, ...], sent: str) -> None:
    # As twilio-video.js reverts simulcast where the answer's codec is not VP8: the publisher
    # sends one full-size stream in the answered codec, not VP8 layers under another's name.
    async with running_server(room_type="group") as server:
        if room_codecs:
            await create(server, *room_codecs)
        alice = await join(server, "alice", tracks=[rtcroom.LocalVideoTrack(PatternTrack())],
                           preferred_video_codecs=preferred)
        carol = await join(server, "carol", tracks=[])
        try:
            await wait_until(lambda: "video" in received(carol).get("alice", {}), 60)
            assert sent_codecs(server, alice) == {"video": f"video/{sent}"}
            frames = await asyncio.wait_for(
                pattern_frames(received(carol)["alice"]["video"], 3), 30)
            assert [(f.width, f.height) for f in frames] == [(WIDTH, HEIGHT)] * 3
            [layered] = [simulcast_of(s) for _, pc in alice._signaling.pcs.connections()
                         for s in pc.getSenders() if simulcast_of(s) is not None]
            assert layered is not None and layered.active == 1
            assert layered.frames_encoded[0] > 0 and layered.frames_encoded[1:] == [0, 0]
            group = server.service.media.rooms[alice.sid]
            [track] = group.router.tracks.values()
            assert len(track.statistics) == 1  # one SSRC arrived, not three
        finally:
            for room in (alice, carol):
                await room.disconnect()
