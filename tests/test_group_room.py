"""Group rooms end to end: a real rtcroom server whose SFU forwards the media of real rtcroom
clients (aiortc) on 127.0.0.1; each participant has one peer connection, to the server."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rtcroom
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from loopback_peers import (
    NoiseTrack,
    PatternTrack,
    ToneTrack,
    dominant_frequency,
    looks_like_pattern,
)
from rtcroom.aiortc_ext.ice import udp_endpoints
from rtcroom.dscp import get_traffic_class
from rtcroom.signaling.messages import IceServer
from serverutil import (  # noqa: F401
    TcpProxy,
    joined,
    loopback_ice,
    running_server,
    settled_video_rates,
    token,
    wait_until,
)
from test_connect_p2p import subscribed_tracks as received
from test_connect_turn import turn  # noqa: F401 (fixture)

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(240)]


@pytest.fixture
def encoder_calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Calls to the VP8 and Opus encoders, by (class name, instance id)."""
    calls: Counter = Counter()
    for cls in (Vp8Encoder, OpusEncoder):
        original = cls.encode

        def counted(self, *args, _original=original, _name=cls.__name__, **kwargs):
            calls[(_name, id(self))] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "encode", counted)
    return calls


async def tone_frequency(track: Any, seconds: float = 0.5) -> float:
    chunks: list[np.ndarray] = []
    total, rate, skipped = 0, 48000, 0
    async for frame in track.frames():
        if skipped < 10:  # the decoder's first output may still ramp up
            skipped += 1
            continue
        rate = frame.sample_rate
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        chunks.append(samples.astype(np.float64))
        total += len(samples)
        if total >= seconds * rate:
            break
    return dominant_frequency(np.concatenate(chunks), rate)


async def pattern_frames(track: Any, count: int) -> list[Any]:
    frames = []
    async for frame in track.frames():
        if looks_like_pattern(frame):
            frames.append(frame)
            if len(frames) == count:
                break
    return frames


async def join(server: Any, identity: str, **options: Any) -> rtcroom.Room:
    return await rtcroom.connect(token(identity), server=server.url, name="room", **options)


async def test_three_participants_receive_each_others_audio_video_and_data(
        encoder_calls: Counter) -> None:
    frequencies = {"p0": 500.0, "p1": 800.0, "p2": 1200.0}
    videos = {name: PatternTrack(160, 120) for name in frequencies}
    data = {name: rtcroom.LocalDataTrack() for name in frequencies}
    async with running_server(room_type="group") as server:
        rooms = {}
        for name, frequency in frequencies.items():
            rooms[name] = await join(server, name, tracks=[
                rtcroom.LocalAudioTrack(ToneTrack(frequency)),
                rtcroom.LocalVideoTrack(videos[name]), data[name]])
        try:
            for name, room in rooms.items():
                others = [n for n in frequencies if n != name]
                await wait_until(lambda room=room, others=others: all(
                    len(received(room).get(o, {})) == 3 for o in others), 60)
            for name, room in rooms.items():
                # One connection per participant, to the server.
                assert len(room._signaling.pcs.connections()) == 1  # type: ignore[union-attr]
                for other, tracks in received(room).items():
                    assert abs(await asyncio.wait_for(tone_frequency(tracks["audio"]), 20)
                               - frequencies[other]) < 10
                    frames = await asyncio.wait_for(pattern_frames(tracks["video"], 5), 20)
                    assert all((f.width, f.height) == (160, 120) for f in frames)

            messages: dict[str, list[Any]] = {name: [] for name in rooms}
            for name, room in rooms.items():
                for other, tracks in received(room).items():
                    tracks["data"].on("message",
                                      lambda m, t, name=name: messages[name].append(m))
            for name in rooms:
                data[name].send(f"hello from {name}")
            await wait_until(lambda: all(len(m) == 2 for m in messages.values()), 20)
            for name, got in messages.items():
                assert sorted(got) == sorted(f"hello from {o}" for o in rooms if o != name)

            # Each publisher encodes its video once per frame, for both subscribers: three VP8
            # encoders in the whole process (the server never encodes), each called at most
            # once per frame its source produced.
            vp8 = {k[1]: n for k, n in encoder_calls.items() if k[0] == "Vp8Encoder"}
            assert len(vp8) == 3
            assert sum(vp8.values()) <= sum(v.frames for v in videos.values())
            assert len([k for k in encoder_calls if k[0] == "OpusEncoder"]) == 3
        finally:
            for room in rooms.values():
                await room.disconnect()


async def test_publish_unpublish_and_leave_renegotiate_without_dropping_other_tracks() -> None:
    async with running_server(room_type="group") as server:
        baseline = asyncio.all_tasks()
        alice = await join(server, "alice", tracks=[rtcroom.LocalAudioTrack(ToneTrack(600))])
        bob = await join(server, "bob", tracks=[rtcroom.LocalAudioTrack(ToneTrack(900))])
        carol = await join(server, "carol", tracks=[])
        rooms = [alice, bob, carol]
        try:
            await wait_until(lambda: set(received(carol)) == {"alice", "bob"}, 60)
            assert abs(await tone_frequency(received(carol)["alice"]["audio"]) - 600) < 10

            # Publishing later: the new track reaches carol, alice's keeps flowing.
            video = rtcroom.LocalVideoTrack(PatternTrack(160, 120))
            publication = await bob.local_participant.publish_track(video)
            await wait_until(lambda: "video" in received(carol).get("bob", {}), 30)
            assert len(await pattern_frames(received(carol)["bob"]["video"], 3)) == 3
            carol_pc = carol._signaling.pcs.pc  # type: ignore[union-attr]
            bob_video_transceiver = carol_pc.getTransceivers()[-1]
            bob_video_receiver = bob_video_transceiver.receiver
            bob_video = bob_video_receiver.track
            assert bob_video_transceiver.kind == "video"
            assert abs(await tone_frequency(received(carol)["alice"]["audio"]) - 600) < 10
            assert abs(await tone_frequency(received(alice)["bob"]["audio"]) - 900) < 10

            # Unpublishing: carol and alice lose bob's video only.
            await bob.local_participant.unpublish_track(publication.track)
            await wait_until(lambda: "video" not in received(carol).get("bob", {}), 30)
            await wait_until(lambda: "video" not in received(alice).get("bob", {}), 30)
            group = server.service.media.rooms[alice.sid]
            assert publication.track_sid not in group.router.tracks
            # carol's receiver of it stopped with it (no RTCP loop left running on the m-line),
            # and the m-line waits, with a fresh receiver, for a track to reuse it.
            await wait_until(lambda: bob_video.readyState == "ended", 10)
            assert bob_video_receiver._RTCRtpReceiver__rtcp_task.done()
            assert bob_video_transceiver.receiver.track is None
            assert abs(await tone_frequency(received(carol)["bob"]["audio"]) - 900) < 10

            # Leaving: bob's tracks and legs end everywhere; alice's audio still reaches carol.
            bob_sid = bob.local_participant.sid
            await bob.disconnect()
            rooms.remove(bob)
            await wait_until(lambda: "bob" not in received(carol), 30)
            assert bob_sid not in group.peers
            alice_sids = {pub.track_sid for pub in alice.local_participant.tracks.values()}
            assert set(group.router.tracks) == alice_sids
            assert set(group.peers[carol.local_participant.sid].legs) == alice_sids
            assert abs(await tone_frequency(received(carol)["alice"]["audio"]) - 600) < 10
        finally:
            for room in rooms:
                await room.disconnect()
        # Everyone left: the room's media is gone, and no task of it is left running.
        await wait_until(lambda: not server.service.media.rooms or all(
            not g.peers for g in server.service.media.rooms.values()), 30)
        for _ in range(100):
            leftover = {t for t in asyncio.all_tasks() - baseline if not t.done()}
            leftover.discard(asyncio.current_task())
            if not leftover:
                break
            await asyncio.sleep(0.1)
        assert not leftover, leftover


async def test_a_new_subscription_reuses_the_m_lines_of_ended_ones() -> None:
    """aiortc never reuses an m-line; the SFU does (JSEP allows a new msid on an inactive
    m-line), so a subscriber's connection does not grow with every track it ever received."""
    async with running_server(room_type="group") as server:
        carol = await join(server, "carol", tracks=[])
        rooms = [carol]
        try:
            for name, frequency in (("alice", 500), ("dave", 900), ("erin", 1300)):
                guest = await join(server, name, tracks=[
                    rtcroom.LocalAudioTrack(ToneTrack(frequency)),
                    rtcroom.LocalVideoTrack(PatternTrack(160, 120))])
                rooms.append(guest)
                await wait_until(lambda name=name: len(received(carol).get(name, {})) == 2, 60)
                tracks = received(carol)[name]
                assert abs(await asyncio.wait_for(tone_frequency(tracks["audio"]), 20)
                           - frequency) < 10
                assert len(await asyncio.wait_for(pattern_frames(tracks["video"], 3), 20)) == 3
                carol_pc = carol._signaling.pcs.pc  # type: ignore[union-attr]
                sfu_pc = server.service.media.rooms[carol.sid].peers[
                    carol.local_participant.sid].pc
                assert sorted(t.kind for t in carol_pc.getTransceivers()) == ["audio", "video"]
                assert sorted(t.kind for t in sfu_pc.getTransceivers()) == ["audio", "video"]
                await guest.disconnect()
                rooms.remove(guest)
                await wait_until(lambda name=name: name not in received(carol), 30)
        finally:
            for room in rooms:
                await room.disconnect()


async def test_automatic_subscription_off_receives_nothing_in_a_group_room() -> None:
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalAudioTrack(ToneTrack(700))])
        lurker = await join(server, "lurker", tracks=[], automatic_subscription=False)
        bob = await join(server, "bob", tracks=[])
        try:
            await wait_until(lambda: "alice" in received(bob), 30)
            assert abs(await tone_frequency(received(bob)["alice"]["audio"]) - 700) < 10
            assert [p.identity for p in lurker.participants.values()] == ["alice", "bob"]
            assert received(lurker) == {}
            group = server.service.media.rooms[alice.sid]
            assert group.peers[lurker.local_participant.sid].legs == {}
            assert lurker._signaling.pcs.connections() == []  # type: ignore[union-attr]
        finally:
            for room in (bob, lurker, alice):
                await room.disconnect()


class Voice(ToneTrack):
    """A quiet background (about -60 dBov), and while ``speaking`` a tone in 200 ms syllables
    with 60 ms dips: the detector tells speech from a steady sound by the contrast with the
    noise floor and by its rhythm."""

    speaking = False
    _frames = 0

    async def recv(self):
        self._frames += 1
        syllable = self._frames % 13 < 10
        self.amplitude = 0.3 if self.speaking and syllable else 0.001
        return await super().recv()


async def test_dominant_speaker_follows_who_speaks() -> None:
    """Three participants take turns speaking, the others quiet; the ones that asked for it
    (dominant_speaker=True) see the dominant speaker follow the turns, the other does not."""
    voices = {name: Voice(300 + 200 * i) for i, name in enumerate(("a", "b", "c"))}
    async with running_server(room_type="group") as server:
        rooms = {name: await join(server, name, dominant_speaker=name != "c",
                                  tracks=[rtcroom.LocalAudioTrack(voice)])
                 for name, voice in voices.items()}
        changes: dict[str, list[str | None]] = {name: [] for name in rooms}
        for name, room in rooms.items():
            room.on("dominant_speaker_changed", lambda p, name=name: changes[name].append(
                p.identity if p is not None else None))
        try:
            for name, room in rooms.items():
                await wait_until(lambda room=room: len(received(room)) == 2, 60)
            for speaker in ("b", "a", "b"):
                for name, voice in voices.items():
                    voice.speaking = name == speaker
                # The stated delay is 2.5 s from the first word; the machine is shared, so the
                # wait is longer, but the turn lasts until the change is seen.
                await wait_until(lambda speaker=speaker: all(
                    room.dominant_speaker is not None
                    and room.dominant_speaker.identity == speaker
                    for name, room in rooms.items() if name not in ("c", speaker)), 15)
            # Each change was announced once; while the local participant speaks, the room's
            # dominant speaker (a remote participant) is None.
            assert changes["a"] == ["b", None, "b"]
            assert changes["b"] == ["a", None]
            assert changes["c"] == [] and rooms["c"].dominant_speaker is None
        finally:
            for room in rooms.values():
                await room.disconnect()


async def test_a_dropped_websocket_resumes_and_media_keeps_flowing() -> None:
    async with running_server(room_type="group") as server:
        proxy = TcpProxy(server.port)
        await proxy.start()
        alice = await join(server, "alice", tracks=[])
        bob = await rtcroom.connect(token("bob"), server=proxy.url, name="room",
                                    tracks=[rtcroom.LocalAudioTrack(ToneTrack(750))])
        states: list[str] = []
        bob.on("reconnecting", lambda error: states.append("reconnecting"))
        bob.on("reconnected", lambda: states.append("reconnected"))
        try:
            await wait_until(lambda: "audio" in received(alice).get("bob", {}), 30)
            proxy.cut()
            await wait_until(lambda: states == ["reconnecting", "reconnected"], 20)
            # The connection to the SFU outlived the signaling connection.
            assert abs(await tone_frequency(received(alice)["bob"]["audio"]) - 750) < 10
            # The session goes on: a track published after the resume is negotiated and
            # forwarded on the same connection.
            await bob.local_participant.publish_track(
                rtcroom.LocalVideoTrack(PatternTrack(160, 120)))
            await wait_until(lambda: "video" in received(alice).get("bob", {}), 30)
            assert len(await pattern_frames(received(alice)["bob"]["video"], 3)) == 3
            assert len(bob._signaling.pcs.connections()) == 1  # type: ignore[union-attr]
        finally:
            await bob.disconnect()
            await alice.disconnect()
            await proxy.stop()


async def test_eight_participants_each_receive_every_other(encoder_calls: Counter,
                                                          monkeypatch: Any) -> None:
    # 8 x 7 = 56 received streams decoded in this one process: video at 5 frames/s keeps the
    # event loop (and so every signaling heartbeat) responsive on a small shared machine.
    # The server and all eight clients share that loop, which reads each socket one datagram
    # per turn: the clients' sockets overflow (thousands of UDP receive-buffer drops a run,
    # tens of thousands on a loaded machine). Before aiortc_ext.repair a subscriber's video
    # stayed stuck on such a loss for ~100 s (aiortc dropped every retransmission on a
    # connection receiving several videos): the ~110 s runs after another group test. The
    # ICE consent checks (RFC 7675) are lost with the media, and six in a row (aioice's
    # default) end a connection; participants in processes of their own do not share a loop,
    # so here the tolerance is raised.
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 60)
    n = 8
    frequencies = [400.0 + 150 * i for i in range(n)]
    async with running_server(room_type="group") as server:
        rooms = [await join(server, f"p{i}", tracks=[
            rtcroom.LocalAudioTrack(ToneTrack(frequencies[i])),
            rtcroom.LocalVideoTrack.test_pattern(160, 120, frame_rate=5)]) for i in range(n)]
        try:
            for room in rooms:
                await wait_until(lambda room=room: sum(
                    len(t) for t in received(room).values()) == 2 * (n - 1), 90)

            async def check(room: rtcroom.Room) -> None:
                for identity, tracks in received(room).items():
                    i = int(identity[1:])
                    assert abs(await tone_frequency(tracks["audio"], 0.3) - frequencies[i]) < 10
                    async for frame in tracks["video"].frames():
                        assert (frame.width, frame.height) == (160, 120)
                        break

            await asyncio.wait_for(asyncio.gather(*(check(r) for r in rooms)), 120)
            assert all(r.state == rtcroom.RoomState.CONNECTED for r in rooms), [
                r.state for r in rooms]
            # One VP8 encoder per publisher, whatever the number of subscribers.
            assert len([k for k in encoder_calls if k[0] == "Vp8Encoder"]) == n
        finally:
            for room in rooms:
                await room.disconnect()


async def test_max_subscription_bitrate_switches_off_the_lower_priority_video() -> None:
    """Two publishers of incompressible video (each encoder spends its whole budget); a
    subscriber capped below their sum keeps the high-priority one and has the other switched
    off: the SFU stops forwarding it and the client sees track_switched_off."""
    async with running_server(room_type="group") as server:
        high = await join(server, "high", tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
        low = await join(server, "low", tracks=[rtcroom.LocalVideoTrack(NoiseTrack(160, 120))])
        for pub in high.local_participant.tracks.values():
            pub.set_priority("high")
        probe = await join(server, "probe", tracks=[])
        rooms = [high, low, probe]
        try:
            group = server.service.media.rooms[high.sid]
            rates = await settled_video_rates(group, 2)
            # Room for the larger of the two, not for both.
            cap = int(rates[1] * 1.3)
            assert cap < sum(rates)
            capped = await join(server, "capped", tracks=[], bandwidth_profile={
                "video": {"max_subscription_bitrate": cap}})
            rooms.append(capped)
            switched: list[str] = []
            capped.on("track_switched_off",
                      lambda track, pub, participant: switched.append(participant.identity))
            by_identity = {p.identity: p for p in capped.participants.values()}
            low_pub = next(iter(by_identity["low"].tracks.values()))
            high_pub = next(iter(by_identity["high"].tracks.values()))
            # The new subscriber's keyframe requests make both rates jump for a moment, so the
            # first allocations may differ; it settles with the high-priority video on.
            await wait_until(lambda: low_pub.is_track_switched_off
                             and not high_pub.is_track_switched_off, 30)
            assert "low" in switched
            legs = group.peers[capped.local_participant.sid].legs
            low_leg, high_leg = (legs[p.track_sid].subscription for p in (low_pub, high_pub))
            assert low_leg.paused and not high_leg.paused
            sent = low_leg.packets_sent, high_leg.packets_sent
            await asyncio.sleep(1.0)
            assert low_leg.packets_sent == sent[0]
            await wait_until(lambda: high_leg.packets_sent > sent[1], 10)
            # The uncapped probe gets both.
            probe_legs = group.peers[probe.local_participant.sid].legs
            assert not any(leg.subscription.paused for leg in probe_legs.values())
        finally:
            for room in rooms:
                await room.disconnect()


async def test_a_malformed_offer_leaves_the_others_media_alone() -> None:
    async with running_server(room_type="group") as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalAudioTrack(ToneTrack(650))])
        client, connected, cm = await joined(server, "mallory")
        try:
            await client.msg({"type": "update", "peer_connections": [
                {"id": "x", "description": {"type": "offer", "revision": 1,
                                            "sdp": "v=0\r\nnot an SDP\r\n"}}]})
            bob = await join(server, "bob", tracks=[])
            try:
                await wait_until(lambda: "alice" in received(bob), 30)
                assert abs(await tone_frequency(received(bob)["alice"]["audio"]) - 650) < 10
                group = server.service.media.rooms[alice.sid]
                assert connected["participant"]["sid"] in group.peers
            finally:
                await bob.disconnect()
        finally:
            await cm.__aexit__(None, None, None)
            await alice.disconnect()


async def test_server_dscp_marks_the_sfu_sockets() -> None:
    async with running_server(room_type="group", dscp=True) as server:
        alice = await join(server, "alice", tracks=[rtcroom.LocalAudioTrack(ToneTrack(500))])
        bob = await join(server, "bob", tracks=[])
        try:
            await wait_until(lambda: "alice" in received(bob), 30)
            group = server.service.media.rooms[alice.sid]
            for peer in group.peers.values():
                assert peer.pc is not None
                classes = {get_traffic_class(e.socket) for e in udp_endpoints(peer.pc)}
                assert classes and 0 not in classes
            # The clients did not ask for DSCP: theirs stay unmarked.
            pc = bob._signaling.pcs.connections()[0][1]  # type: ignore[union-attr]
            assert {get_traffic_class(e.socket) for e in udp_endpoints(pc)} == {0}
        finally:
            await bob.disconnect()
            await alice.disconnect()


async def test_relay_only_clients_reach_the_sfu_through_turn(
        turn: tuple[IceServer, Path]) -> None:  # noqa: F811 (the fixture)
    ice_server, log = turn
    async with running_server(room_type="group", ice_servers=(ice_server,)) as server:
        alice = await join(server, "alice", ice_transport_policy="relay",
                           tracks=[rtcroom.LocalAudioTrack(ToneTrack(550))])
        bob = await join(server, "bob", ice_transport_policy="relay", tracks=[])
        try:
            await wait_until(lambda: "alice" in received(bob), 60)
            assert abs(await tone_frequency(received(bob)["alice"]["audio"]) - 550) < 10
        finally:
            await bob.disconnect()
            await alice.disconnect()
    # Both clients' connections to the SFU allocated a relay and sent media through it.
    assert log.read_text().count("ALLOCATE processed, success") >= 2
