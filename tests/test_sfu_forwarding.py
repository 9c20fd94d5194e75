"""The SFU's media path with real aiortc peers on loopback: publishers' tracks reach every
subscriber through rtcroom.server.sfu, decoded only by the subscribers, encoded once by the
publisher, with NACKs answered per leg and everything torn down afterwards."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import numpy as np
import pytest
import rtcroom
from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
from aiortc.mediastreams import MediaStreamTrack
from loopback_peers import (
    HEIGHT,
    WIDTH,
    PatternTrack,
    ToneTrack,
    dominant_frequency,
    looks_like_pattern,
    loopback_only,
    negotiate,
    wait_connected,
)
from rtcroom import dscp
from rtcroom.aiortc_ext.dscp import enable_dscp
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.aiortc_ext.rtp import DirectSink, negotiated_codecs, sender_ssrc
from rtcroom.server.sfu import ForwardedTrack, Router, rtx_ssrcs
from sfu_room import add_publisher, add_subscriber, close_all, connect_all
from wire import LoopbackCapture

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(autouse=True)
def _loopback():
    with loopback_only():
        yield


@pytest.fixture
def codec_calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Calls to the encoders and the VP8 decoder, by (class name, instance id)."""
    calls: Counter = Counter()
    for cls, method in ((Vp8Encoder, "encode"), (OpusEncoder, "encode"),
                        (Vp8Decoder, "decode")):
        original = getattr(cls, method)

        def counted(self, *args, _original=original, _name=cls.__name__, **kwargs):
            calls[(_name, id(self))] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, counted)
    return calls


async def _tone_frequency(track: MediaStreamTrack, seconds: float = 1.0) -> float:
    # Skip the start, where the decoder's output may still be ramping up.
    for _ in range(10):
        await asyncio.wait_for(track.recv(), 10)
    chunks, total, rate = [], 0, 48000
    while total < seconds * rate:
        frame = await asyncio.wait_for(track.recv(), 10)
        rate = frame.sample_rate
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        chunks.append(samples.astype(np.float64))
        total += len(samples)
    return dominant_frequency(np.concatenate(chunks), rate)


async def _pattern_frames(track: MediaStreamTrack, count: int) -> list:
    frames = []
    while len(frames) < count:
        frame = await asyncio.wait_for(track.recv(), 15)
        if looks_like_pattern(frame):
            frames.append(frame)
    return frames


def _bar_position(frame) -> int:
    row = frame.to_ndarray(format="gray")[7 * frame.height // 8]
    return int(np.argmin(np.abs(row.astype(int) - 128)[: frame.width // 2 - 16]))


def _decoder_threads() -> list[str]:
    # aiortc names each receiver's decoder thread "<kind>-decoder"; the SFU's receivers have
    # them too (idle, since the tap keeps packets from them).
    return [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]


def _by_class(calls: Counter, name: str) -> dict[int, int]:
    return {key[1]: n for key, n in calls.items() if key[0] == name}


async def test_one_publisher_three_subscribers(codec_calls: Counter) -> None:
    baseline_tasks = asyncio.all_tasks()
    router = Router()
    tone, video = ToneTrack(1000), PatternTrack()
    pub = await add_publisher(router, "alice", [tone, video])
    sids = [t.sid for t in pub.tracks]
    subs = [await add_subscriber(router, f"sub{i}", sids) for i in range(3)]
    started = time.monotonic()
    try:
        await connect_all([pub], subs)
        for sub in subs:
            audio, vid = (sub.remote_tracks[s] for s in sids)
            assert abs(await _tone_frequency(audio) - 1000) < 5
            frames = await _pattern_frames(vid, 10)
            assert all((f.width, f.height) == (WIDTH, HEIGHT) for f in frames)
            # The moving bar moves: these are successive frames, not one frame repeated.
            assert len({_bar_position(f) for f in frames}) > 3

        # The publisher's encoders ran once per frame for all three subscribers; nothing in
        # the SFU encoded or decoded: one VP8 and one Opus encoder, three VP8 decoders (the
        # subscribers').
        vp8 = _by_class(codec_calls, "Vp8Encoder")
        opus = _by_class(codec_calls, "OpusEncoder")
        assert len(vp8) == 1 and len(opus) == 1
        assert video.frames - 1 <= next(iter(vp8.values())) <= video.frames
        assert len(_by_class(codec_calls, "Vp8Decoder")) == 3

        audio_track, video_track = pub.tracks
        assert audio_track.audio_level is not None and audio_track.audio_level < 30
        assert audio_track.voice_activity is not None
        # Subscribers joining asked for keyframes, at most once a second per track.
        elapsed = time.monotonic() - started
        assert 1 <= video_track.keyframe_requests_sent <= 1 + elapsed
        for sub in subs:
            for s in sub.subscriptions:
                assert s.packets_sent > 0
                # Sent by the native forwarder itself, through the leg's SRTP session.
                assert s.forwarder is not None and s.forwarder.attached
                assert s.forwarder.sent_packets > 0 and s.forwarder.send_errors == 0
    finally:
        await close_all(router, [pub], subs)

    # Teardown leaves no subscription, tap, task or decoder thread behind.
    assert not router.tracks
    for track in pub.tracks:
        assert track.closed and not track.subscriptions
        assert "_handle_rtp_data" not in vars(track.receiver.transport)
    for _ in range(100):
        leftover = {t for t in asyncio.all_tasks() - baseline_tasks if not t.done()}
        leftover.discard(asyncio.current_task())
        if not leftover and not _decoder_threads():
            break
        await asyncio.sleep(0.1)
    assert not leftover, leftover
    assert not _decoder_threads()


async def test_loss_on_one_leg_is_repaired_from_the_cache(monkeypatch) -> None:
    router = Router()
    video = PatternTrack()
    pub = await add_publisher(router, "bob", [video])
    publisher_nacks = []
    original = RTCRtpSender._handle_rtcp_packet

    async def spy(self, packet):
        publisher_nacks.append(type(packet).__name__)
        await original(self, packet)

    monkeypatch.setattr(pub.senders[0], "_handle_rtcp_packet", spy.__get__(pub.senders[0]))
    sid = pub.tracks[0].sid
    lossy = await add_subscriber(router, "lossy", [sid])
    clean = await add_subscriber(router, "clean", [sid])
    lossy_leg = lossy.subscriptions[0]
    dropped = []
    real_send = lossy_leg.send

    def drop_some(data: bytes) -> None:
        # The forwarded packets of this leg whose sequence number is a multiple of 5 never
        # leave the SFU (the first 20 of them): a rule on the packets themselves, however
        # many reach the leg in a given time on a loaded machine.
        if int.from_bytes(data[2:4], "big") % 5 == 0 and len(dropped) < 20:
            dropped.append(data)
            lossy_leg._packets_sent += 1  # lost on the wire: sent all the same
            return
        real_send(data)

    lossy_leg.send = drop_some
    try:
        await connect_all([pub], [lossy, clean])
        await _pattern_frames(lossy.remote_tracks[sid], 30)
        # Frames keep decoding while the drops and their repairs add up (bounded in frames).
        for _ in range(300):
            if len(dropped) >= 3 and lossy_leg.retransmitted >= 3:
                break
            await _pattern_frames(lossy.remote_tracks[sid], 1)
        await _pattern_frames(clean.remote_tracks[sid], 5)
        assert len(dropped) >= 3
        assert lossy_leg.nacks_received > 0 and lossy_leg.retransmitted >= 3
        assert clean.subscriptions[0].retransmitted == 0
        # The publisher heard nothing of it.
        assert "RtcpRtpfbPacket" not in publisher_nacks
    finally:
        await close_all(router, [pub], [lossy, clean])


async def test_unsubscribe_and_unpublish_keep_others_running() -> None:
    router = Router()
    a_tone, b_tone = ToneTrack(700), ToneTrack(1300)
    a = await add_publisher(router, "a", [a_tone])
    b = await add_publisher(router, "b", [b_tone])
    sids = [a.tracks[0].sid, b.tracks[0].sid]
    s1 = await add_subscriber(router, "s1", sids)
    s2 = await add_subscriber(router, "s2", sids)
    try:
        await connect_all([a, b], [s1, s2])
        assert abs(await _tone_frequency(s1.remote_tracks[sids[0]], 0.5) - 700) < 10
        s1.subscriptions[0].close()
        router.unpublish(sids[1])
        assert router.tracks.keys() == {sids[0]}
        assert a.tracks[0].subscriptions == (s2.subscriptions[0],)
        assert abs(await _tone_frequency(s2.remote_tracks[sids[0]], 0.5) - 700) < 10
        # A closed subscription sends nothing more.
        sent = s1.subscriptions[0].packets_sent
        await asyncio.sleep(0.3)
        assert s1.subscriptions[0].packets_sent == sent
        with pytest.raises(ValueError, match=sids[1]):
            router.subscribe(sids[1], s2.server.getTransceivers()[1])
    finally:
        await close_all(router, [a, b], [s1, s2])


async def test_eight_participants_each_receive_every_other_track(codec_calls: Counter) -> None:
    """A full room: eight participants each publish a tone of their own frequency and a video
    pattern, and subscribe to the other seven."""
    router = Router()
    n = 8
    frequencies = [400 + 150 * i for i in range(n)]
    videos = [PatternTrack(160, 120) for _ in range(n)]
    pubs = [await add_publisher(router, f"p{i}", [ToneTrack(frequencies[i]), videos[i]])
            for i in range(n)]
    subs = [await add_subscriber(router, f"s{i}", [t.sid for j, p in enumerate(pubs) if j != i
                                                     for t in p.tracks])
            for i in range(n)]
    try:
        await connect_all(pubs, subs)

        async def check(i: int) -> None:
            for j, pub in enumerate(pubs):
                if j == i:
                    continue
                audio, video = (subs[i].remote_tracks[t.sid] for t in pub.tracks)
                assert abs(await _tone_frequency(audio, 0.3) - frequencies[j]) < 10
                frame = (await _pattern_frames(video, 1))[0]
                assert (frame.width, frame.height) == (160, 120)

        await asyncio.gather(*(check(i) for i in range(n)))
        # Eight VP8 encoders (one per publisher), each once per frame of its source.
        vp8 = _by_class(codec_calls, "Vp8Encoder")
        assert len(vp8) == n
        assert min(vp8.values()) >= 1
        assert sum(vp8.values()) <= sum(v.frames for v in videos)
        assert len(_by_class(codec_calls, "OpusEncoder")) == n
    finally:
        await close_all(router, pubs, subs)


@pytest.mark.parametrize("audio_codec,video_codec", [("audio/PCMU", "video/H264"),
                                                     ("audio/PCMA", "video/VP8")])
async def test_other_codecs_are_forwarded(audio_codec: str, video_codec: str) -> None:
    router = Router()
    pub = await add_publisher(router, "c", [ToneTrack(800), PatternTrack()],
                              audio_codec=audio_codec, video_codec=video_codec)
    sids = [t.sid for t in pub.tracks]
    assert [c.mimeType for c in pub.tracks[0].codecs] == [audio_codec]
    assert pub.tracks[1].codecs[0].mimeType == video_codec
    sub = await add_subscriber(router, "s", sids)
    try:
        await connect_all([pub], [sub])
        assert abs(await _tone_frequency(sub.remote_tracks[sids[0]], 0.5) - 800) < 10
        frames = await _pattern_frames(sub.remote_tracks[sids[1]], 5)
        assert all((f.width, f.height) == (WIDTH, HEIGHT) for f in frames)
    finally:
        await close_all(router, [pub], [sub])


async def test_loss_on_the_publishers_leg_is_nacked_and_repaired_by_rtx() -> None:
    router = Router()
    video = PatternTrack()
    pub = await add_publisher(router, "carol", [video])
    track = pub.tracks[0]
    sender = pub.senders[0]
    transport = sender.transport
    real_send = transport._send_rtp
    dropped: list[int] = []

    async def lossy_uplink(data: bytes) -> None:
        # Drop every 7th original media packet (not RTCP, not RTX) on the way to the SFU.
        media = data[1] & 0x7F not in range(72, 77) and int.from_bytes(data[8:12], "big") == \
            sender._ssrc
        if media and len(dropped) < 10 and int.from_bytes(data[2:4], "big") % 7 == 0:
            dropped.append(int.from_bytes(data[2:4], "big"))
            return
        await real_send(data)

    transport._send_rtp = lossy_uplink
    sub = await add_subscriber(router, "dave", [track.sid])
    try:
        await connect_all([pub], [sub])
        await _pattern_frames(sub.remote_tracks[track.sid], 60)
        assert len(dropped) >= 3
        assert track.nacks_sent > 0 and track.retransmissions_received > 0
        # Receiver reports reached the publisher (aiortc turns them into remote-inbound-rtp).
        for _ in range(50):
            stats = await sender.getStats()
            remote = [s for s in stats.values() if s.type == "remote-inbound-rtp"]
            if remote:
                break
            await asyncio.sleep(0.1)
        assert remote and remote[0].packetsReceived > 0
    finally:
        await close_all(router, [pub], [sub])


async def test_subscribing_later_renegotiates_without_dropping_existing_tracks() -> None:
    """What explicit subscribe/unsubscribe will do: add a ForwardedTrack transceiver to the
    subscriber's connected peer connection and renegotiate; stop one and renegotiate."""
    router = Router()
    a = await add_publisher(router, "a", [ToneTrack(600)])
    b = await add_publisher(router, "b", [ToneTrack(1100)])
    sid_a, sid_b = a.tracks[0].sid, b.tracks[0].sid
    sub = await add_subscriber(router, "s", [sid_a])
    try:
        await connect_all([a, b], [sub])
        assert abs(await _tone_frequency(sub.remote_tracks[sid_a], 0.3) - 600) < 10
        transceiver = sub.server.addTransceiver(ForwardedTrack("audio"), direction="sendonly")
        later = router.subscribe(sid_b, transceiver)
        await negotiate(sub.server, sub.client)
        track_b = sub.client.getTransceivers()[1].receiver.track
        first_leg = sub.subscriptions[0]
        sent_before = first_leg.packets_sent
        assert abs(await _tone_frequency(track_b, 0.3) - 1100) < 10
        assert abs(await _tone_frequency(sub.remote_tracks[sid_a], 0.3) - 600) < 10
        assert first_leg.packets_sent > sent_before and later.packets_sent > 0

        # Unsubscribing: the SFU stops the leg and renegotiates it away.
        later.close()
        await transceiver.stop()
        await negotiate(sub.server, sub.client)
        assert abs(await _tone_frequency(sub.remote_tracks[sid_a], 0.3) - 600) < 10
        assert b.tracks[0].subscriptions == ()
    finally:
        await close_all(router, [a, b], [sub])


async def test_a_publishers_crash_leaves_the_others_running() -> None:
    router = Router()
    a = await add_publisher(router, "a", [ToneTrack(500), PatternTrack()])
    b = await add_publisher(router, "b", [ToneTrack(900)])
    sids_a = [t.sid for t in a.tracks]
    sid_b = b.tracks[0].sid
    sub = await add_subscriber(router, "s", [*sids_a, sid_b])
    try:
        await connect_all([a, b], [sub])
        assert abs(await _tone_frequency(sub.remote_tracks[sids_a[0]], 0.3) - 500) < 10
        # The publisher goes away without unpublishing; its tracks stop arriving.
        await a.client.close()
        await asyncio.sleep(0.2)  # what was already on the wire
        received = [t.packets_received for t in a.tracks]
        assert abs(await _tone_frequency(sub.remote_tracks[sid_b], 0.3) - 900) < 10
        assert [t.packets_received for t in a.tracks] == received
        # The room notices the connection state and unpublishes: subscriptions end with it.
        for sid in sids_a:
            router.unpublish(sid)
        assert all(t.closed and not t.subscriptions for t in a.tracks)
        assert [s.closed for s in sub.subscriptions] == [True, True, False]
        assert abs(await _tone_frequency(sub.remote_tracks[sid_b], 0.3) - 900) < 10
    finally:
        await close_all(router, [a, b], [sub])


async def test_forwarded_video_goes_through_the_pacer() -> None:
    router = Router()
    pub = await add_publisher(router, "p", [PatternTrack()])
    sid = pub.tracks[0].sid
    sub = await add_subscriber(router, "s", [sid])
    try:
        await connect_all([pub], [sub])
        pacer = router.pace(sub.server, 2_000_000)
        leg = sub.subscriptions[0]
        assert len(await _pattern_frames(sub.remote_tracks[sid], 5)) == 5
        # The forwarder sends through the connection's pacing sink.
        assert leg.forwarder is not None and leg.forwarder.attached
        assert pacer.sink is not None and leg._sink is pacer.sink
        sent, paced = leg.forwarder.sent_packets, pacer.sent_packets
        frames = await _pattern_frames(sub.remote_tracks[sid], 10)
        assert len(frames) == 10
        # Everything forwarded since the pacer was enabled left through it.
        assert pacer.sent_packets > paced + 5 and leg.forwarder.sent_packets > sent + 5
        pacer.close()
        # Sending through an unpaced sink of its own again.
        assert leg.forwarder.attached and isinstance(leg._sink, DirectSink)
    finally:
        await close_all(router, [pub], [sub])


def _renumber(sdp: str, payload_types: dict[str, str], extension_ids: dict[str, str]) -> str:
    """The description with other payload type numbers and header extension ids, as a browser
    would choose them (aiortc picks the same numbers on every connection)."""
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("m=video"):
            line = " ".join(payload_types.get(t, t) for t in line.split(" "))
        for prefix in ("a=rtpmap:", "a=rtcp-fb:", "a=fmtp:"):
            if line.startswith(prefix):
                pt, rest = line[len(prefix):].split(" ", 1)
                rest = " ".join(
                    f"apt={payload_types.get(t[4:], t[4:])}" if t.startswith("apt=") else t
                    for t in rest.split(" "))
                line = f"{prefix}{payload_types.get(pt, pt)} {rest}"
        if line.startswith("a=extmap:"):
            ext_id, rest = line[len("a=extmap:"):].split(" ", 1)
            line = f"a=extmap:{extension_ids.get(ext_id, ext_id)} {rest}"
        lines.append(line)
    return "\r\n".join(lines)


async def test_payload_types_and_extension_ids_are_rewritten_per_leg() -> None:
    router = Router()
    client, server = bundled_peer_connection(), bundled_peer_connection()
    client.addTransceiver(PatternTrack(), direction="sendonly")
    await client.setLocalDescription(await client.createOffer())
    offer = _renumber(client.localDescription.sdp, {"97": "120", "98": "121"},
                      {"1": "9", "3": "12"})
    await server.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await server.setLocalDescription(await server.createAnswer())
    await client.setRemoteDescription(server.localDescription)
    track = router.publish("v", server.getTransceivers()[0], rtx=rtx_ssrcs(offer, "0"))
    assert {c.payloadType for c in track.codecs} >= {120}
    sub = await add_subscriber(router, "s", ["v"])
    leg = negotiated_codecs(sub.server.getTransceivers()[0])
    assert 120 not in {c.payloadType for c in leg}
    try:
        await wait_connected(client, server, sub.client, sub.server)
        frames = await _pattern_frames(sub.remote_tracks["v"], 10)
        assert all((f.width, f.height) == (WIDTH, HEIGHT) for f in frames)
        # The subscriber's bandwidth estimator read abs-send-time under its own id (its REMB
        # comes back), though the publisher sent it under another.
        for _ in range(100):
            if sub.subscriptions[0].estimated_bitrate:
                break
            await asyncio.sleep(0.1)
        assert sub.subscriptions[0].estimated_bitrate
    finally:
        await close_all(router, [], [sub])
        await client.close()
        await server.close()


async def test_one_connection_per_participant_publishes_and_subscribes() -> None:
    """A group room's usual shape: each participant has one peer connection to the server that
    carries its own tracks up and the others' tracks down (added by server-side offers)."""
    router = Router()
    frequencies = {"ann": 450, "ben": 850}
    pcs = {}
    for name, frequency in frequencies.items():
        client, server = bundled_peer_connection(), bundled_peer_connection()
        client.addTransceiver(ToneTrack(frequency), direction="sendonly")
        await negotiate(client, server)
        router.publish(name, server.getTransceivers()[0])
        pcs[name] = (client, server)
    try:
        await wait_connected(*(pc for pair in pcs.values() for pc in pair))
        for name, (client, server) in pcs.items():
            other = next(n for n in frequencies if n != name)
            transceiver = server.addTransceiver(ForwardedTrack("audio"), direction="sendonly")
            router.subscribe(other, transceiver)
            await negotiate(server, client)
        for name, (client, _) in pcs.items():
            other = next(n for n in frequencies if n != name)
            received = client.getTransceivers()[1].receiver.track
            assert abs(await _tone_frequency(received, 0.3) - frequencies[other]) < 10
        assert all(t.packets_received > 0 for t in router.tracks.values())
    finally:
        router.close()
        await asyncio.gather(*(pc.close() for pair in pcs.values() for pc in pair))


async def test_audio_level_is_measured_when_the_sender_does_not_send_it() -> None:
    router = Router()
    client, server = bundled_peer_connection(), bundled_peer_connection()
    tone = ToneTrack(1000, amplitude=0.3)
    client.addTransceiver(tone, direction="sendonly")
    await client.setLocalDescription(await client.createOffer())
    offer = "\r\n".join(line for line in client.localDescription.sdp.split("\r\n")
                        if "ssrc-audio-level" not in line)
    await server.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await server.setLocalDescription(await server.createAnswer())
    await client.setRemoteDescription(server.localDescription)
    track = router.publish("mic", server.getTransceivers()[0])
    sub = await add_subscriber(router, "s", ["mic"])
    try:
        await wait_connected(client, server, sub.client, sub.server)
        # The oracle: the level of the audio as a subscriber decodes it (aiortc's encoder
        # upmixes mono with a -3 dB pan, so it is not the source's level).
        frames = [await asyncio.wait_for(sub.remote_tracks["mic"].recv(), 10) for _ in range(30)]
        expected = rtcroom.audio_level_dbov(frames[-1].to_ndarray())
        assert track.audio_level is not None and abs(track.audio_level - expected) <= 1
        assert track.voice_activity is None  # only a sender can say that
    finally:
        await close_all(router, [], [sub])
        await client.close()
        await server.close()


async def test_forwarded_media_is_marked_per_kind_with_dscp() -> None:
    router = Router()
    pub = await add_publisher(router, "p", [ToneTrack(700), PatternTrack()])
    sids = [t.sid for t in pub.tracks]
    sub = await add_subscriber(router, "s", sids)
    marker = enable_dscp(sub.server)
    with LoopbackCapture() as capture:
        try:
            await connect_all([pub], [sub])
            await _pattern_frames(sub.remote_tracks[sids[1]], 3)
            audio_ssrc, video_ssrc = (sender_ssrc(s.sender) for s in sub.subscriptions)
            sock, = marker.sockets()
            port = sock.getsockname()[1]
            for _ in range(100):
                seen: dict[int, set[int]] = {}
                for d in capture.datagrams():
                    if d.src[1] == port and len(d.payload) >= 12 and 127 < d.payload[0] < 192:
                        seen.setdefault(int.from_bytes(d.payload[8:12], "big"), set()).add(
                            d.traffic_class)
                if {audio_ssrc, video_ssrc} <= seen.keys():
                    break
                await asyncio.sleep(0.05)
            assert seen[audio_ssrc] == {dscp.AUDIO_TRAFFIC_CLASS}
            assert seen[video_ssrc] == {dscp.VIDEO_TRAFFIC_CLASS}
        finally:
            await close_all(router, [pub], [sub])


async def test_malformed_packets_from_a_publisher_are_dropped_without_error() -> None:
    """The packet path runs inside the socket callback: an exception there would close the
    connection. Garbage shaped like RTP (right version, the track's SSRC and payload types,
    truncated headers, extensions, padding and payloads) must be dropped quietly."""
    router = Router()
    pub = await add_publisher(router, "p", [ToneTrack(500), PatternTrack()])
    sub = await add_subscriber(router, "s", [t.sid for t in pub.tracks])
    rng = np.random.default_rng(3)
    try:
        await connect_all([pub], [sub])
        await _pattern_frames(sub.remote_tracks[pub.tracks[1].sid], 1)
        for track in pub.tracks:
            ssrc = track.ssrcs[0]
            types = [c.payloadType for c in track.codecs] + list(track._rtx_apt) + [0, 127]
            before = track.packets_received
            for _ in range(2000):
                data = bytearray(rng.integers(0, 256, int(rng.integers(0, 1400)), np.uint8))
                if len(data) >= 12:
                    data[0] = 0x80 | (data[0] & 0x3F)
                    data[1] = (data[1] & 0x80) | int(rng.choice(types))
                    data[8:12] = ssrc.to_bytes(4, "big")
                track._on_rtp(bytes(data), 0)
            assert track.packets_received > before  # some were well-formed enough to count
        # Both legs still work.
        assert abs(await _tone_frequency(sub.remote_tracks[pub.tracks[0].sid], 0.3) - 500) < 10
    finally:
        await close_all(router, [pub], [sub])
