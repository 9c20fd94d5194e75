"""The client object model, driven through the interface the network layer uses.

The first tests call the package-internal methods directly, as the signaling client does when
the server reports something. The last ones publish real media: a RoomSignaling implemented
over two aiortc peer connections on loopback carries what one Room's LocalParticipant publishes
to another Room's RemoteParticipant, with no server in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from rtcroom import errors
from rtcroom.client import (
    NetworkQualityStats,
    LocalAudioTrack,
    LocalAudioTrackPublication,
    LocalDataTrack,
    LocalParticipant,
    LocalTrack,
    LocalVideoTrack,
    RemoteAudioTrack,
    RemoteAudioTrackPublication,
    RemoteDataTrack,
    RemoteVideoTrack,
    Room,
    create_local_tracks,
)
from rtcroom.client.stats import collect_stats_report
from rtcroom.constants import ParticipantState, RoomState, TrackKind, TrackPriority
from rtcroom.media import Recorder, ToneTrack, frame_audio_level
from rtcroom.media import TestPatternTrack as PatternTrack  # not a pytest class
from rtcroom.options import (
    ConnectOptions,
    EncodingParameters,
    NetworkQualityConfiguration,
    VideoTrackDimensions,
)
from serverutil import loopback_ice  # noqa: F401 (fixture)

# The peer connections of LoopbackSignaling stay on loopback, as every test's traffic must.
pytestmark = pytest.mark.usefixtures("loopback_ice")


class Recorded:
    """Collects (source, event, args) for every event of the given emitters."""

    def __init__(self, **emitters: Any) -> None:
        self.events: list[tuple[str, str, tuple[Any, ...]]] = []
        for label, emitter in emitters.items():
            for event in sorted(emitter.EVENTS):
                emitter.on(event, self._catch(label, event))

    def _catch(self, label: str, event: str) -> Any:
        return lambda *args: self.events.append((label, event, args))

    def names(self) -> list[tuple[str, str]]:
        return [(label, event) for label, event, _ in self.events]

    def take(self) -> list[tuple[str, str, tuple[Any, ...]]]:
        events, self.events = self.events, []
        return events


async def read_frames(
    frames: AsyncIterator[Any], done: Callable[[list[Any]], bool], limit: int = 500
) -> list[Any]:
    """Frames until ``done(frames so far)`` or ``limit`` frames, within 30 s."""

    async def run() -> list[Any]:
        out: list[Any] = []
        async with contextlib.aclosing(frames):
            async for frame in frames:
                out.append(frame)
                if done(out) or len(out) >= limit:
                    break
        return out

    return await asyncio.wait_for(run(), 30)


def make_room(signaling: Any = None, **options: Any) -> Room:
    local = LocalParticipant("PA-local", "me")
    return Room("RM1", "standup", local, signaling=signaling, options=ConnectOptions(**options))


# --- remote side, driven by the network interface ------------------------------------------------


async def test_participant_and_publication_lifecycle_events() -> None:
    room = make_room()
    rec = Recorded(room=room)
    bob = room._add_participant("PA-bob", "bob")
    assert room.participants == {"PA-bob": bob} and bob.state == ParticipantState.CONNECTED
    assert room._add_participant("PA-bob", "bob") is bob  # idempotent
    rec_bob = Recorded(bob=bob)

    pub = bob._add_publication("MT-a", "mic", "audio", enabled=True, priority="high")
    assert isinstance(pub, RemoteAudioTrackPublication)
    assert (pub.track_sid, pub.track_name, pub.kind) == ("MT-a", "mic", TrackKind.AUDIO)
    assert pub.publish_priority is TrackPriority.HIGH and not pub.is_subscribed
    assert bob.audio_tracks == {"MT-a": pub} and bob.video_tracks == {}
    assert rec.take() == [
        ("room", "participant_connected", (bob,)),
        ("room", "track_published", (pub, bob)),
    ]
    assert rec_bob.take() == [("bob", "track_published", (pub,))]

    rec_pub = Recorded(pub=pub)
    track = bob._subscribe("MT-a", ToneTrack())
    assert isinstance(track, RemoteAudioTrack) and pub.track is track and pub.is_subscribed
    assert rec_pub.take() == [("pub", "subscribed", (track,))]
    assert rec.take() == [("room", "track_subscribed", (track, pub, bob))]

    bob._set_track_enabled("MT-a", False)
    assert not pub.is_track_enabled and not track.is_enabled
    bob._set_publish_priority("MT-a", "low")
    room._switch_tracks(off=["MT-a"])
    room._switch_tracks(off=["MT-a"])  # no change, no event
    assert pub.is_track_switched_off and track.is_switched_off
    room._switch_tracks(on=["MT-a"])
    assert rec_pub.names() == [
        ("pub", "track_disabled"),
        ("pub", "publish_priority_changed"),
        ("pub", "track_switched_off"),
        ("pub", "track_switched_on"),
    ]
    assert [e for e in rec.take() if e[1] != "track_started"] == [
        ("room", "track_disabled", (pub, bob)),
        ("room", "track_publish_priority_changed", (TrackPriority.LOW, pub, bob)),
        ("room", "track_switched_off", (track, pub, bob)),
        ("room", "track_switched_on", (track, pub, bob)),
    ]

    room._set_participant_state("PA-bob", "reconnecting")
    room._set_participant_state("PA-bob", "connected")
    room._set_dominant_speaker("PA-bob")
    stats = NetworkQualityStats(4)
    room._set_network_quality("PA-bob", 4, stats)
    assert room.dominant_speaker is bob and bob.network_quality_level == 4
    assert rec.names() == [
        ("room", "participant_reconnecting"),
        ("room", "participant_reconnected"),
        ("room", "dominant_speaker_changed"),
    ]
    assert ("bob", "network_quality_level_changed", (4, stats)) in rec_bob.events
    rec.take()

    room._remove_participant("PA-bob")
    assert bob.state == ParticipantState.DISCONNECTED and room.participants == {}
    assert room.dominant_speaker is None
    assert rec.take() == [
        ("room", "track_unsubscribed", (track, pub, bob)),
        ("room", "track_unpublished", (pub, bob)),
        ("room", "dominant_speaker_changed", (None,)),
        ("room", "participant_disconnected", (bob,)),
    ]
    assert ("bob", "disconnected") in rec_bob.names()


async def test_remote_audio_track_measures_level_and_yields_frames() -> None:
    room = make_room()
    bob = room._add_participant("PA-bob", "bob")
    bob._add_publication("MT-a", "mic", "audio")
    started = room.wait_for("track_started", timeout=10)
    track = bob._subscribe("MT-a", ToneTrack(amplitude=0.5))
    assert await started == (track, bob)
    assert isinstance(track, RemoteAudioTrack)
    frames = await read_frames(track.frames(), lambda got: len(got) == 3)
    assert [f.to_ndarray().shape for f in frames] == [(1, 960)] * 3
    assert track.audio_level is not None and abs(track.audio_level - 16383) <= 1
    bob._unsubscribe("MT-a")
    assert [f async for f in track.frames()] == []  # unsubscribed: a new reader ends at once


async def test_media_subscription_needs_its_track() -> None:
    bob = make_room()._add_participant("PA-bob", "bob")
    bob._add_publication("MT-v", "cam", "video")
    with pytest.raises(ValueError, match="needs its MediaStreamTrack"):
        bob._subscribe("MT-v")
    with pytest.raises(KeyError, match="MT-x"):
        bob._subscribe("MT-x")
    with pytest.raises(ValueError, match="kind"):
        bob._add_publication("MT-z", "z", "screen")


async def test_data_track_messages_reach_track_participant_and_room() -> None:
    room = make_room()
    bob = room._add_participant("PA-bob", "bob", announce=False)
    bob._add_publication("MT-d", "chat", "data")
    track = bob._subscribe("MT-d")
    assert isinstance(track, RemoteDataTrack)
    got: list[tuple[Any, ...]] = []
    track.on("message", lambda *a: got.append(("track", *a)))
    bob.on("track_message", lambda *a: got.append(("bob", *a)))
    room.on("track_message", lambda *a: got.append(("room", *a)))

    async def read_two() -> list[Any]:
        out = []
        async for message in track.messages():
            out.append(message)
            if len(out) == 2:
                break
        return out

    reader = asyncio.ensure_future(read_two())
    await asyncio.sleep(0)
    track._receive("hello")
    track._receive(b"\x00\x01")
    assert await asyncio.wait_for(reader, 5) == ["hello", b"\x00\x01"]
    assert got[:3] == [
        ("track", "hello", track),
        ("bob", "hello", track),
        ("room", "hello", track, bob),
    ]

    ending = asyncio.ensure_future(read_two())
    await asyncio.sleep(0)
    bob._unsubscribe("MT-d")
    assert await asyncio.wait_for(ending, 5) == []


async def test_subscription_failure_and_unknown_events() -> None:
    room = make_room()
    bob = room._add_participant("PA-bob", "bob")
    pub = bob._add_publication("MT-v", "cam", "video")
    error = errors.from_code(53404)
    failed = pub.wait_for("subscription_failed", timeout=5)
    bob._subscription_failed("MT-v", error)
    assert await failed is error
    with pytest.raises(ValueError, match="no event 'participantConnected'"):
        room.on("participantConnected", print)
    with pytest.raises(ValueError):
        pub.on("track_subscribed", print)


async def test_room_reconnecting_and_disconnected() -> None:
    tone = LocalAudioTrack.tone()
    room = Room("RM1", "r", LocalParticipant("PA-l", "me"), owned_tracks=[tone])
    bob = room._add_participant("PA-bob", "bob")
    bob._add_publication("MT-d", "chat", "data")
    data = bob._subscribe("MT-d")
    rec = Recorded(room=room)
    error = errors.SignalingConnectionDisconnectedError()
    room._set_reconnecting(error)
    assert room.state == RoomState.RECONNECTING
    assert room.local_participant.state == ParticipantState.RECONNECTING
    room._set_reconnected()
    room._set_recording(True)
    room._set_recording(False)
    room._disconnected(errors.RoomCompletedError())
    room._disconnected(None)  # once only
    names = rec.names()
    assert names == [
        ("room", "reconnecting"),
        ("room", "reconnected"),
        ("room", "recording_started"),
        ("room", "recording_stopped"),
        ("room", "track_unsubscribed"),
        ("room", "disconnected"),
    ]
    assert rec.events[0][2] == (error,)
    assert rec.events[-1][2][0] is room and rec.events[-1][2][1].code == 53118
    assert room.state == RoomState.DISCONNECTED and bob.state == ParticipantState.DISCONNECTED
    assert tone.is_stopped and not bob.tracks["MT-d"].is_subscribed and data.sid == "MT-d"
    await room.disconnect()  # already disconnected: nothing happens


# --- local side ---------------------------------------------------------------------------------


async def test_local_track_enable_disable_and_stop_events() -> None:
    track = LocalVideoTrack.test_pattern(64, 48, name="cam")
    rec = Recorded(track=track)
    track.disable()
    track.disable()
    track.enable()
    track.stop()
    track.enable(False)  # a stopped track stays as it was
    assert rec.names() == [("track", "disabled"), ("track", "enabled"), ("track", "stopped")]
    assert track.name == "cam" and track.kind == TrackKind.VIDEO and track.is_stopped
    with pytest.raises(TypeError):
        track.enable("no")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="stopped"):
        track._sender_track()


async def test_local_track_gate_sends_silence_and_black_when_disabled() -> None:
    audio = LocalAudioTrack.tone(amplitude=0.5)
    started = audio.wait_for("started", timeout=5)
    tap = audio._sender_track()
    first = await tap.recv()
    assert await started is audio and audio.is_started
    assert frame_level(first) > 16000 and audio.audio_level == frame_level(first)
    audio.disable()
    await tap.recv()  # a frame may already be queued from before
    silent = await tap.recv()
    assert frame_level(silent) == 0 and audio.audio_level == 0
    assert tap.id == audio.id == audio.media_stream_track.id
    audio.stop()

    video = LocalVideoTrack.test_pattern(64, 48)
    dims = video.wait_for("dimensions_changed", timeout=5)
    vtap = video._sender_track()
    await vtap.recv()
    await dims
    assert (video.dimensions.width, video.dimensions.height) == (64, 48)  # type: ignore[union-attr]
    video.disable()
    await vtap.recv()
    black = await vtap.recv()
    assert black.to_ndarray(format="rgb24").max() <= 3
    video.stop()


def frame_level(frame: av.AudioFrame) -> int:
    return int(np.abs(frame.to_ndarray().astype(np.int32)).max())


async def test_numpy_tracks_write_through_to_senders() -> None:
    audio = LocalAudioTrack.from_numpy(sample_rate=16000)
    tap = audio._sender_track()
    await audio.write(np.full(320, 1234, dtype=np.int16))
    assert frame_level(await tap.recv()) == 1234
    video = LocalVideoTrack.from_numpy(frame_rate=10)
    vtap = video._sender_track()
    await video.write(np.full((16, 16, 3), 77, dtype=np.uint8))
    await video.end()
    assert (await vtap.recv()).width == 16
    with pytest.raises(TypeError, match="from_numpy"):
        await LocalAudioTrack.tone().write(np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError, match="needs a audio MediaStreamTrack"):
        LocalAudioTrack(video.media_stream_track)


def test_create_local_tracks_follows_options() -> None:
    tracks = create_local_tracks()
    assert [t.kind for t in tracks] == [TrackKind.AUDIO, TrackKind.VIDEO]
    audio_only = create_local_tracks(audio={"sampleRate": 16000, "channelCount": 2}, video=False)
    assert len(audio_only) == 1
    tone = audio_only[0].media_stream_track  # type: ignore[attr-defined]
    assert (tone.sample_rate, tone.channels) == (16000, 2)
    (video,) = create_local_tracks(
        {"audio": False, "video": {"width": 320, "height": 240, "name": "cam"}}
    )
    pattern = video.media_stream_track  # type: ignore[attr-defined]
    assert (pattern.width, pattern.height, video.name) == (320, 240, "cam")
    with pytest.raises(ValueError, match=r"video\.frame_rate: 0 is less than 1"):
        create_local_tracks(video={"frameRate": 0})
    for track in tracks + audio_only + [video]:
        track.stop()


async def test_data_track_options_and_send_checks() -> None:
    track = LocalDataTrack({"maxRetransmits": 2, "ordered": False, "name": "chat"})
    assert (track.max_retransmits, track.ordered, track.reliable, track.name) == (
        2,
        False,
        False,
        "chat",
    )
    assert LocalDataTrack().reliable
    with pytest.raises(ValueError, match="max_packet_life_time, max_retransmits"):
        LocalDataTrack({"maxRetransmits": 1, "maxPacketLifeTime": 5})
    with pytest.raises(TypeError, match="str or bytes"):
        track.send(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot be disabled"):
        track.disable()
    track.send("nobody listens")  # dropped, as in twilio-video.js


# --- real media over aiortc ---------------------------------------------------------------------


class LoopbackSignaling:
    """RoomSignaling over two aiortc peer connections on loopback.

    What the local room publishes arrives at ``remote_room`` as tracks of a RemoteParticipant:
    the same calls a signaling client makes when the server relays a publication.
    """

    def __init__(self, remote_room: Room, sid: str, identity: str) -> None:
        config = RTCConfiguration(iceServers=[])
        self.out = RTCPeerConnection(config)
        self.into = RTCPeerConnection(config)
        self.remote = remote_room._add_participant(sid, identity)
        self.sids = (f"MT{n}" for n in itertools.count())
        self.by_track: dict[LocalTrack, str] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.refuse: errors.TwilioError | None = None
        self._channels: dict[str, str] = {}
        self.into.on("datachannel", self._on_datachannel)

    def _on_datachannel(self, channel: Any) -> None:
        sid = self._channels[channel.label]
        track = self.remote._subscribe(sid)
        channel.on("message", track._receive)  # type: ignore[attr-defined]

    async def _negotiate(self) -> None:
        await self.out.setLocalDescription(await self.out.createOffer())
        await self.into.setRemoteDescription(self.out.localDescription)
        await self.into.setLocalDescription(await self.into.createAnswer())
        await self.out.setRemoteDescription(self.into.localDescription)

    async def publish_track(self, track: LocalTrack, priority: TrackPriority) -> str:
        self.calls.append(("publish", track, priority))
        if self.refuse is not None:
            raise self.refuse
        sid = next(self.sids)
        self.by_track[track] = sid
        self.remote._add_publication(sid, track.name, track.kind, track.is_enabled, priority)
        if isinstance(track, LocalDataTrack):
            self._channels[track.id] = sid
            channel = self.out.createDataChannel(track.id, ordered=track.ordered)
            track._add_data_channel(channel)
            await self._negotiate()
            opened = asyncio.get_running_loop().create_future()
            channel.on("open", lambda: opened.done() or opened.set_result(None))
            if channel.readyState != "open":
                await asyncio.wait_for(opened, 20)
        else:
            sender = self.out.addTrack(track._sender_track())  # type: ignore[attr-defined]
            await self._negotiate()
            mid = next(t.mid for t in self.out.getTransceivers() if t.sender is sender)
            receiver = next(t.receiver for t in self.into.getTransceivers() if t.mid == mid)
            self.remote._subscribe(sid, receiver.track)
        return sid

    async def unpublish_track(self, track: LocalTrack) -> None:
        self.calls.append(("unpublish", track))
        self.remote._remove_publication(self.by_track.pop(track))

    def local_track_changed(self, track: LocalTrack) -> None:
        self.calls.append(("changed", track, track.is_enabled))
        if track in self.by_track and not track.is_stopped:
            self.remote._set_track_enabled(self.by_track[track], track.is_enabled)

    def publish_priority_changed(self, track_sid: str, priority: TrackPriority) -> None:
        self.calls.append(("priority", track_sid, priority))
        self.remote._set_publish_priority(track_sid, priority)

    def subscribe_priority_changed(self, track_sid: str, priority: TrackPriority | None) -> None:
        self.calls.append(("subscribe_priority", track_sid, priority))

    def render_hint(
        self,
        track_sid: str,
        enabled: bool | None = None,
        render_dimensions: VideoTrackDimensions | None = None,
    ) -> None:
        self.calls.append(("render_hint", track_sid, enabled, render_dimensions))

    def set_encoding_parameters(self, parameters: EncodingParameters) -> None:
        self.calls.append(("encoding", parameters))

    def set_network_quality_configuration(self, configuration: NetworkQualityConfiguration) -> None:
        self.calls.append(("network_quality", configuration))

    async def disconnect(self) -> None:
        self.calls.append(("disconnect",))
        await self.out.close()
        await self.into.close()

    async def get_stats(self) -> list[Any]:
        sids = {track.id: sid for track, sid in self.by_track.items()}
        sent = {track.id: track for track in self.by_track}
        received = {
            publication.track.media_stream_track.id: publication.track  # type: ignore[union-attr]
            for publication in self.remote.tracks.values()
            if isinstance(publication.track, (RemoteAudioTrack, RemoteVideoTrack))
        }
        return [
            await collect_stats_report("PC-out", self.out, sids, sent),
            await collect_stats_report("PC-in", self.into, sids, received),
        ]


@pytest.fixture
async def rooms() -> Any:
    bob_room = make_room()
    signaling = LoopbackSignaling(bob_room, "PA-alice", "alice")
    alice_room = Room("RM1", "standup", LocalParticipant("PA-alice", "alice"), signaling=signaling)
    yield alice_room, bob_room, signaling
    await alice_room.disconnect()
    await bob_room.disconnect()


async def test_published_media_arrives_as_remote_tracks(rooms: Any, tmp_path: pathlib.Path) -> None:
    alice_room, bob_room, signaling = rooms
    alice = alice_room.local_participant
    local_rec = Recorded(alice=alice)
    remote_rec = Recorded(room=bob_room)
    tone = LocalAudioTrack.tone(amplitude=0.5, name="mic")
    pattern = LocalVideoTrack.test_pattern(160, 120, frame_rate=15, name="cam")

    audio_pub = await alice.publish_track(tone, priority="high")
    video_pub = await alice.publish_track(pattern.media_stream_track, {"name": "ignored"})
    assert isinstance(audio_pub, LocalAudioTrackPublication)
    assert audio_pub.priority is TrackPriority.HIGH and video_pub.priority is TrackPriority.STANDARD
    assert video_pub.track is not pattern and video_pub.track.kind == TrackKind.VIDEO
    assert await alice.publish_track(tone) is audio_pub  # already published
    assert alice.tracks == {audio_pub.track_sid: audio_pub, video_pub.track_sid: video_pub}
    assert [e[1] for e in local_rec.take() if e[1] == "track_published"] == ["track_published"] * 2

    bob_view = bob_room.participants["PA-alice"]
    remote_audio = bob_view.tracks[audio_pub.track_sid].track
    remote_video = bob_view.tracks[video_pub.track_sid].track
    assert isinstance(remote_audio, RemoteAudioTrack) and isinstance(remote_video, RemoteVideoTrack)
    assert remote_audio.name == "mic"
    assert bob_view.tracks[audio_pub.track_sid].publish_priority is TrackPriority.HIGH

    # Decoded media: the tone's level survives Opus, the pattern's size survives VP8.
    audio_frames = await read_frames(remote_audio.frames(), lambda got: len(got) == 40)
    assert max(frame_audio_level(f) for f in audio_frames) > 8000
    (frame,) = await read_frames(remote_video.frames(), lambda got: True)
    assert (frame.width, frame.height) == (160, 120)
    assert frame.to_ndarray(format="rgb24").shape == (120, 160, 3)
    assert remote_video.dimensions is not None and remote_video.dimensions.width == 160
    assert ("room", "track_started") in remote_rec.names()

    # Disabling the local track silences it and tells the subscriber.
    disabled = bob_room.wait_for("track_disabled", timeout=10)
    tone.disable()
    assert await disabled == (bob_view.tracks[audio_pub.track_sid], bob_view)

    def five_silent(got: list[Any]) -> bool:
        return len(got) >= 5 and all(frame_audio_level(f) == 0 for f in got[-5:])

    assert five_silent(await read_frames(remote_audio.frames(), five_silent))
    assert remote_audio.audio_level == 0
    assert ("alice", "track_disabled") in local_rec.names()

    # A recording of the remote tracks is a readable file with both streams.
    out = tmp_path / "bob.mkv"
    async with Recorder(out, remote_audio, remote_video):
        await asyncio.sleep(1.0)
    with av.open(str(out)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]

    sent, received = await alice_room.get_stats()
    assert sent.peer_connection_id == "PC-out" and not sent.remote_audio_track_stats
    (local_audio,) = sent.local_audio_track_stats
    (local_video,) = sent.local_video_track_stats
    assert local_audio.track_sid == audio_pub.track_sid and local_audio.codec == "opus"
    assert local_audio.packets_sent > 0 and local_audio.bytes_sent > 0  # type: ignore[operator]
    assert local_video.codec == "VP8" and local_video.dimensions == VideoTrackDimensions(160, 120)
    (remote_audio_stats,) = received.remote_audio_track_stats
    (remote_video_stats,) = received.remote_video_track_stats
    assert remote_audio_stats.track_sid == audio_pub.track_sid
    assert remote_audio_stats.packets_received > 0  # type: ignore[operator]
    assert remote_audio_stats.jitter is not None and remote_audio_stats.jitter < 1
    assert remote_video_stats.dimensions == VideoTrackDimensions(160, 120)

    audio_pub.set_priority("low")
    remote_audio.set_priority("high")
    alice.set_parameters({"maxVideoBitrate": 300_000})
    assert ("priority", audio_pub.track_sid, TrackPriority.LOW) in signaling.calls
    assert bob_view.tracks[audio_pub.track_sid].publish_priority is TrackPriority.LOW
    assert ("encoding", EncodingParameters(max_video_bitrate=300_000)) in signaling.calls
    assert not any(
        call[0] == "subscribe_priority" for call in signaling.calls
    )  # bob has no signaling
    assert remote_audio.priority is TrackPriority.HIGH

    unpublished = bob_room.wait_for("track_unpublished", timeout=10)
    assert await audio_pub.unpublish() is audio_pub
    assert (await unpublished)[0].track_sid == audio_pub.track_sid
    assert audio_pub.track_sid not in alice.tracks
    assert await alice.unpublish_track(tone) is None
    tone.stop()
    pattern.stop()


async def test_data_track_over_a_real_data_channel(rooms: Any) -> None:
    alice_room, bob_room, _ = rooms
    chat = LocalDataTrack({"name": "chat"})
    publication = await alice_room.local_participant.publish_track(chat)
    remote = bob_room.participants["PA-alice"].tracks[publication.track_sid]
    assert remote.kind == TrackKind.DATA and remote.track_name == "chat"
    received = bob_room.wait_for("track_message", timeout=20)
    chat.send("hi bob")
    data, track, participant = await received
    assert (data, track.sid, participant.identity) == ("hi bob", publication.track_sid, "alice")


async def test_publish_failures(rooms: Any) -> None:
    alice_room, _, signaling = rooms
    alice = alice_room.local_participant
    signaling.refuse = errors.TrackNameIsDuplicatedError()
    failed = alice.wait_for("track_publication_failed", timeout=5)
    track = LocalAudioTrack.tone()
    with pytest.raises(errors.TrackNameIsDuplicatedError):
        await alice.publish_track(track)
    error, failed_track = await failed
    assert error.code == 53304 and failed_track is track and alice.tracks == {}
    track.stop()
    with pytest.raises(errors.TrackInvalidError):
        await alice.publish_track(track)
    with pytest.raises(TypeError, match="LocalTrack or MediaStreamTrack"):
        await alice.publish_track("microphone")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="options.priority"):
        await alice.publish_track(LocalAudioTrack.tone(), {"priority": "urgent"})
    await alice_room.disconnect()
    assert ("disconnect",) in signaling.calls
    with pytest.raises(RuntimeError, match="not connected"):
        await alice.publish_track(LocalAudioTrack.tone())


async def test_async_with_room_disconnects(rooms: Any) -> None:
    alice_room, _, signaling = rooms
    async with alice_room as room:
        assert room is alice_room
        assert await room.get_stats()
    assert alice_room.state == RoomState.DISCONNECTED
    assert signaling.calls.count(("disconnect",)) == 1


async def test_local_track_readers_and_recording(tmp_path: pathlib.Path) -> None:
    audio = LocalAudioTrack.from_numpy(sample_rate=48000)
    sender = audio._sender_track()
    reader = audio.frames()
    first = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0)
    await audio.write(np.full(960, 500, dtype=np.int16))
    # The reader and the sender both get the frame.
    assert frame_level(await asyncio.wait_for(first, 5)) == 500
    assert frame_level(await sender.recv()) == 500
    await reader.aclose()

    out = tmp_path / "local.wav"
    async with Recorder(out, audio):
        await audio.write(np.full(4800, 300, dtype=np.int16))
        await audio.end()
        await asyncio.sleep(0.3)
    with av.open(str(out)) as container:
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    # aiortc's recorder writes stereo WAV (mono is spread at -3 dB): a constant stays constant.
    assert len(samples) >= 4800 and len(set(samples[:4800].tolist())) == 1 and samples[0] > 0
    audio.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        audio.create_media_stream_track()


async def test_slow_message_reader_keeps_the_newest() -> None:
    bob = make_room()._add_participant("PA-bob", "bob")
    bob._add_publication("MT-d", "chat", "data")
    track = bob._subscribe("MT-d")
    assert isinstance(track, RemoteDataTrack)
    reader = track.messages(max_queued=2)
    first = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0)
    for n in range(5):
        track._receive(str(n))
    # The reader ran only after all five arrived: it lost the oldest three.
    assert [await first, await reader.__anext__()] == ["3", "4"]
    await reader.aclose()
    assert track._readers == []


async def test_manual_switch_off_control_and_content_preferences() -> None:
    manual = {
        "video": {"clientTrackSwitchOffControl": "manual", "contentPreferencesMode": "manual"}
    }
    signaling = LoopbackSignaling(make_room(), "PA-x", "x")
    room = Room(
        "RM1",
        "r",
        LocalParticipant("PA-l", "me"),
        signaling=signaling,
        options=ConnectOptions(bandwidth_profile=manual),
    )
    bob = room._add_participant("PA-bob", "bob")
    bob._add_publication("MT-v", "cam", "video")
    track = bob._subscribe("MT-v", PatternTrack(64, 48))
    assert isinstance(track, RemoteVideoTrack)
    track.switch_off().switch_on()
    track.set_content_preferences({"width": 320, "height": 180})
    hints = [c for c in signaling.calls if c[0] == "render_hint"]
    assert hints == [
        ("render_hint", "MT-v", False, None),
        ("render_hint", "MT-v", True, None),
        ("render_hint", "MT-v", None, VideoTrackDimensions(320, 180)),
    ]
    with pytest.raises(TypeError, match="render_dimensions.height: required"):
        track.set_content_preferences({"width": 1})
    track.set_priority("low")
    assert ("subscribe_priority", "MT-v", TrackPriority.LOW) in signaling.calls
    await room.disconnect()

    auto_room = make_room()
    carol = auto_room._add_participant("PA-carol", "carol")
    carol._add_publication("MT-c", "cam", "video")
    auto_track = carol._subscribe("MT-c", PatternTrack(64, 48))
    with pytest.raises(RuntimeError, match="client_track_switch_off_control = 'manual'"):
        auto_track.switch_off()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="content_preferences_mode = 'manual'"):
        auto_track.set_content_preferences({"width": 1, "height": 1})  # type: ignore[attr-defined]
    await auto_room.disconnect()


async def test_tracks_from_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "voice.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.full((1, 16000), 2000, dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
    audio = LocalAudioTrack.from_file(path, name="voice")
    await read_frames(audio.frames(), lambda got: True)
    # aiortc's MediaPlayer hands out 48 kHz stereo: mono is spread at -3 dB.
    assert audio.name == "voice" and audio.audio_level is not None
    assert abs(audio.audio_level - 2000 / 2**0.5) <= 1
    audio.stop()
    with pytest.raises(ValueError, match="has no video"):
        LocalVideoTrack.from_file(path)
