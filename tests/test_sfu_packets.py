"""The SFU's per-packet code on its own: header parsing and writing (aiortc's RtpPacket as the
oracle), keyframe detection on real encoder output, the Forwarder's rewriting, the packet cache
and the keyframe-request rate limit."""

from __future__ import annotations

import fractions
import itertools
import random
from unittest import mock

import av
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unpack_header_extensions
from aiortc.rtp import wrap_rtx as aiortc_wrap_rtx
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_peers import pattern
from rtcroom._native.forward import ReceiveStream
from rtcroom.aiortc_ext.vp9 import Vp9Encoder
from rtcroom.media.keyframe import is_h264_keyframe, is_vp8_keyframe, is_vp9_keyframe
from rtcroom.server.sfu.forwarder import Forwarder, LegExtensions
from rtcroom.server.sfu.packetcache import PacketCache
from rtcroom.server.sfu.ratelimit import RateLimit
from rtcroom.server.sfu.resend import DEFAULT_INTERVAL, MIN_INTERVAL, ResendTimes
from rtcroom.server.sfu.router import map_payload_types
from rtcroom.server.sfu.rtpheader import parse_header, unwrap_rtx, wrap_rtx, write_extensions
from sfu_forwarder_reference import extension_block, seq_newer
from sfu_rtpheader_reference import parse_header as reference_parse_header
from sfu_sequence_reference import MAX_DROPOUT, SequenceCheck, Verdict

EXT_MAP = HeaderExtensionsMap()
EXT_MAP.configure(RTCRtpParameters(headerExtensions=[
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    RTCRtpHeaderExtensionParameters(
        id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
]))

packets = st.fixed_dictionaries({
    "pt": st.integers(0, 127), "marker": st.integers(0, 1), "seq": st.integers(0, 0xFFFF),
    "ts": st.integers(0, 0xFFFFFFFF), "ssrc": st.integers(0, 0xFFFFFFFF),
    "csrc": st.lists(st.integers(0, 0xFFFFFFFF), max_size=3),
    "mid": st.one_of(st.none(), st.text("0123456789abc", min_size=1, max_size=5)),
    "level": st.one_of(st.none(), st.tuples(st.booleans(), st.integers(0, 127))),
    "abs_send_time": st.one_of(st.none(), st.integers(0, 0xFFFFFF)),
    "payload": st.binary(max_size=64), "padding": st.integers(0, 20),
})


def _oracle_packet(p: dict) -> RtpPacket:
    packet = RtpPacket(payload_type=p["pt"], marker=p["marker"], sequence_number=p["seq"],
                       timestamp=p["ts"], ssrc=p["ssrc"], payload=p["payload"])
    packet.csrc = p["csrc"]
    packet.extensions.mid = p["mid"]
    packet.extensions.audio_level = p["level"]
    packet.extensions.abs_send_time = p["abs_send_time"]
    packet.padding_size = p["padding"]
    return packet


@given(packets)
def test_parse_header_agrees_with_aiortc(p: dict) -> None:
    data = _oracle_packet(p).serialize(EXT_MAP)
    oracle = RtpPacket.parse(data, EXT_MAP)
    h = parse_header(data)
    assert (h.marker, h.payload_type, h.sequence_number, h.timestamp, h.ssrc) == (
        oracle.marker, oracle.payload_type, oracle.sequence_number, oracle.timestamp,
        oracle.ssrc)
    assert data[h.payload_offset:h.payload_end] == oracle.payload
    assert h.csrc_end == 12 + 4 * len(p["csrc"])
    assert h.extensions.get(1, b"").decode() == (oracle.extensions.mid or "")
    if oracle.extensions.audio_level is not None:
        vad, level = oracle.extensions.audio_level
        assert h.extensions[2][0] == (0x80 if vad else 0) | level
    else:
        assert 2 not in h.extensions


@given(st.lists(st.tuples(st.integers(1, 255), st.binary(min_size=1, max_size=20)),
                max_size=4, unique_by=lambda e: e[0]))
def test_write_extensions_agrees_with_aiortc_unpack(elements: list[tuple[int, bytes]]) -> None:
    block = write_extensions(elements)
    if not elements:
        assert block == b""
        return
    assert len(block) % 4 == 0
    profile = int.from_bytes(block[:2], "big")
    assert int.from_bytes(block[2:4], "big") * 4 == len(block) - 4
    assert sorted(unpack_header_extensions(profile, block[4:])) == sorted(elements)


def _header_or_error(parse, data: bytes) -> object:
    try:
        return tuple(parse(data))
    except ValueError as e:
        return ("ValueError", str(e))


# RTP-looking bytes: version 2 (mostly), flags, CSRC counts and extension blocks of either
# profile with lengths that may overrun, elements of any id and length, padding bytes.
_rtp_like = st.builds(
    lambda b0, rest, profile, words, body, tail: (
        bytes([b0]) + rest + (profile.to_bytes(2, "big") + words.to_bytes(2, "big") + body
                              if b0 & 0x10 else b"") + tail),
    st.one_of(st.integers(0x80, 0xBF), st.integers(0, 255)), st.binary(min_size=11, max_size=11),
    st.sampled_from([0xBEDE, 0x1000, 0x1005, 0x0000, 0xBEDF]), st.integers(0, 6),
    st.binary(max_size=28), st.binary(max_size=24))


@settings(max_examples=400)
@given(st.one_of(_rtp_like, st.binary(max_size=40),
                 packets.map(lambda p: _oracle_packet(p).serialize(EXT_MAP))))
def test_native_parse_header_agrees_with_python_reference(data: bytes) -> None:
    """The native parse against its plain-Python twin: the same header, offsets and extension
    elements (in the same order), or the same refusal."""
    assert _header_or_error(parse_header, data) == _header_or_error(reference_parse_header, data)
    if not isinstance(_header_or_error(parse_header, data)[0], str):
        assert list(parse_header(data).extensions.items()) == list(
            reference_parse_header(data).extensions.items())


@pytest.mark.parametrize("bad", [b"", b"\x80" * 11, b"\x40" + b"\x00" * 11,
                                 b"\x90" + b"\x00" * 11, b"\xa0" + b"\x00" * 11,
                                 b"\x8f" + b"\x00" * 20])
def test_parse_header_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(ValueError):
        parse_header(bad)


def _video_frames(n: int, width: int = 320, height: int = 240):
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(pattern(i, width, height), "rgb24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        yield frame


@pytest.mark.parametrize("encoder_class,test", [(Vp8Encoder, is_vp8_keyframe),
                                                (H264Encoder, is_h264_keyframe),
                                                (Vp9Encoder, is_vp9_keyframe)])
def test_keyframe_detection_on_real_encoder_output(encoder_class, test) -> None:
    encoder = encoder_class()
    seen = []
    for i, frame in enumerate(_video_frames(12)):
        payloads, _ = encoder.encode(frame, force_keyframe=i in (0, 7))
        flags = [test(p, 0, len(p)) for p in payloads]
        # Only the first packet of a keyframe is flagged.
        assert not any(flags[1:])
        seen.append(flags[0])
    assert seen[0] and seen[7]
    assert not any(seen[1:7]) and not any(seen[8:])


def test_vp8_keyframe_needs_partition_start() -> None:
    # S=1, PID=0, no X; frame tag P bit 0: keyframe. S=0 or PID!=0: not a frame start.
    assert is_vp8_keyframe(b"\x10\x00", 0, 2)
    assert not is_vp8_keyframe(b"\x10\x01", 0, 2)
    assert not is_vp8_keyframe(b"\x00\x00", 0, 2)
    assert not is_vp8_keyframe(b"\x11\x00", 0, 2)
    # X, I with a 15-bit picture id, L, T: four descriptor bytes before the tag.
    assert is_vp8_keyframe(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x00]), 0, 7)
    assert not is_vp8_keyframe(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20]), 0, 6)


def _rtp(ssrc: int, seq: int, ts: int, pt: int = 96, payload: bytes = b"\x00" * 8,
         marker: int = 0) -> bytes:
    return RtpPacket(payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts & 0xFFFFFFFF,
                     ssrc=ssrc, payload=payload, marker=marker).serialize()


def _forwarder(video: bool = True, **kw) -> Forwarder:
    args = {"ssrc": 0xABCD, "clock_rate": 90000, "payload_types": {96: 100},
            "extensions": LegExtensions(), "wait_for_keyframe": video,
            "first_sequence_number": 1000, "first_timestamp": 5000}
    args.update(kw)
    return Forwarder(**args)


def _send(f: Forwarder, data: bytes, keyframe: bool, now: float) -> RtpPacket | None:
    out = f.rewrite(data, keyframe, now)
    return None if out is None else RtpPacket.parse(out)


def test_forwarder_waits_for_keyframe_then_rewrites() -> None:
    f = _forwarder()
    f.select(7)
    assert f.wants_keyframe
    assert _send(f, _rtp(7, 50, 900), False, 0.0) is None
    assert _send(f, _rtp(8, 51, 900), True, 0.0) is None  # not the selected stream
    first = _send(f, _rtp(7, 52, 3000), True, 0.0)
    assert first is not None and not f.wants_keyframe
    assert (first.ssrc, first.payload_type, first.sequence_number, first.timestamp) == (
        0xABCD, 100, 1000, 5000)
    nxt = _send(f, _rtp(7, 53, 6000, payload=b"xyz"), False, 0.033)
    assert (nxt.sequence_number, nxt.timestamp, nxt.payload) == (1001, 8000, b"xyz")
    assert _send(f, _rtp(7, 51, 0), False, 0.04) is None  # from before the start
    assert _send(f, _rtp(7, 54, 6000, pt=97), False, 0.04) is None  # payload type not mapped


def test_audio_forwarder_starts_at_once() -> None:
    f = _forwarder(video=False, clock_rate=48000)
    f.select(3)
    assert not f.wants_keyframe
    assert _send(f, _rtp(3, 9, 960), False, 0.0).sequence_number == 1000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["packet", "switch", "pause", "resume"]),
                          st.integers(1, 40)), min_size=1, max_size=30),
       st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_forwarder_output_is_continuous_across_switches_and_pauses(
    steps: list[tuple[str, int]], seq0: int, ts0: int
) -> None:
    """Whatever the sequence of layer switches and pauses, the subscriber sees consecutive
    sequence numbers and timestamps that never go backwards; a switch lands on a keyframe."""
    rng = random.Random(seq0)
    f = _forwarder(first_sequence_number=seq0, first_timestamp=ts0)
    streams = {s: [rng.randrange(1 << 16), rng.randrange(1 << 32)] for s in (1, 2, 3)}
    selected, now = 1, 0.0
    f.select(selected)
    out: list[tuple[RtpPacket, bool, int]] = []
    for action, n in steps:
        if action == "switch":
            selected = selected % 3 + 1
            f.select(selected)
        elif action == "pause":
            f.select(None)
        elif action == "resume":
            f.select(selected)
        else:
            for i in range(n):
                now += 1 / 30
                for ssrc, state in streams.items():
                    state[0] += 1
                    state[1] += 3000
                    keyframe = (i + ssrc) % 7 == 0
                    p = _send(f, _rtp(ssrc, state[0], state[1]), keyframe, now)
                    if p is not None:
                        out.append((p, keyframe, ssrc))
    for (a, _, a_source), (b, b_keyframe, b_source) in itertools.pairwise(out):
        assert b.sequence_number == (a.sequence_number + 1) & 0xFFFF
        assert 0 <= (b.timestamp - a.timestamp) & 0xFFFFFFFF < 1 << 31
        assert b.ssrc == 0xABCD
        assert b_source == a_source or b_keyframe  # a new layer starts at its keyframe
    if out:
        assert out[0][0].sequence_number == seq0 and out[0][0].timestamp == ts0 and out[0][1]


def test_forwarder_maps_nacked_sequence_numbers_back() -> None:
    f = _forwarder()
    f.select(7)
    sent = [_send(f, _rtp(7, 65530 + i, 3000 * i), i == 0, i / 30) for i in range(10)]
    for i, p in enumerate(sent):
        assert f.source_sequence_number(p.sequence_number) == (65530 + i) & 0xFFFF
    cached = _rtp(7, 65533, 9000, payload=b"again")
    again = RtpPacket.parse(f.retransmission(cached, 1.0))
    assert (again.sequence_number, again.timestamp, again.payload) == (
        sent[3].sequence_number, sent[3].timestamp, b"again")
    assert f.source_sequence_number((sent[0].sequence_number - 1) & 0xFFFF) is None


def test_forwarder_writes_the_legs_extensions() -> None:
    ext = LegExtensions(mid_id=4, mid="7", audio_level_id=5, abs_send_time_id=6)
    f = _forwarder(video=False, extensions=ext)
    f.select(1)
    out = f.rewrite(_rtp(1, 1, 1), False, 2.5, b"\x9e")
    h = parse_header(out)
    assert h.extensions == {4: b"7", 5: b"\x9e", 6: (int(2.5 * (1 << 18)) & 0xFFFFFF)
                            .to_bytes(3, "big")}
    assert out[h.payload_offset:] == b"\x00" * 8


@given(st.integers(0, 0xFFFF), st.integers(1, 0x7FFF))
def test_seq_newer(a: int, d: int) -> None:
    assert seq_newer((a + d) & 0xFFFF, a) and not seq_newer(a, (a + d) & 0xFFFF)


def test_packet_cache() -> None:
    cache = PacketCache(size=4)
    for seq in range(65534, 65540):
        cache.put(1, seq & 0xFFFF, bytes([seq & 0xFF]))
    assert cache.get(1, 3) == bytes([3]) and cache.get(1, 2) == bytes([2])
    assert cache.get(1, 65535) is None  # overwritten by a newer packet in its slot
    assert cache.get(2, 3) is None


def test_rate_limit() -> None:
    limit = RateLimit(1.0)
    assert limit.allow(10.0)
    assert not limit.allow(10.5)
    assert limit.allow(11.0)


def test_a_packet_is_resent_at_most_once_per_round_trip() -> None:
    times = ResendTimes(size=4)
    assert times.allow(7, 10.0, rtt=0.05)
    assert not times.allow(7, 10.04, rtt=0.05)  # the first may still be on its way
    assert times.allow(8, 10.04, rtt=0.05)  # other packets are not held back
    assert times.allow(7, 10.05, rtt=0.05)  # a round trip later: the resend was lost
    assert times.allow(11, 10.06, rtt=0.05) and times.allow(7, 10.07, rtt=0.05)  # slot reused
    assert times.allow(1, 20.0, rtt=None)
    assert not times.allow(1, 20.0 + DEFAULT_INTERVAL / 2, rtt=None)
    assert times.allow(2, 30.0, rtt=0.0)
    assert not times.allow(2, 30.0 + MIN_INTERVAL / 2, rtt=0.0)


def test_map_payload_types() -> None:
    def c(pt, mime, rate=90000, **params):
        return RTCRtpCodecParameters(mimeType=mime, clockRate=rate, payloadType=pt,
                                     parameters=params)
    source = [c(96, "video/VP8"), c(97, "video/rtx", apt=96),
              c(102, "video/H264", **{"packetization-mode": 1})]
    leg = [c(100, "video/vp8"), c(101, "video/rtx", apt=100),
           c(120, "video/H264", **{"packetization-mode": 0}),
           c(121, "video/H264", **{"packetization-mode": 1})]
    assert map_payload_types(source, leg) == {96: 100, 102: 121}
    assert map_payload_types(source, [c(0, "audio/PCMU", 8000)]) == {}


@given(st.one_of(st.none(), st.integers(1, 20)), st.text("0123456789", max_size=18),
       st.one_of(st.none(), st.integers(1, 20)), st.one_of(st.none(), st.integers(1, 20)),
       st.one_of(st.none(), st.binary(min_size=1, max_size=2)), st.floats(0, 1e6))
def test_leg_extensions_block_equals_reference(mid_id, mid, level_id, abs_id, level, now):
    ext = LegExtensions(mid_id=mid_id, mid=mid, audio_level_id=level_id, abs_send_time_id=abs_id)
    f = _forwarder(video=False, extensions=ext, payload_types={96: 96})
    f.select(1)
    data = _rtp(1, 1, 1)
    out = f.rewrite(data, False, now, level)
    h = parse_header(out)
    assert out[h.csrc_end:h.payload_offset] == extension_block(ext, level, now)
    assert out[h.payload_offset:] == data[12:]


@given(packets, st.integers(96, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_rtx_wrap_and_unwrap_agree_with_aiortc(p: dict, rtx_pt: int, rtx_seq: int,
                                               rtx_ssrc: int) -> None:
    p["padding"] = 0  # aiortc's wrap_rtx drops padding
    original = _oracle_packet(p)
    data = original.serialize(EXT_MAP)
    wrapped = wrap_rtx(data, parse_header(data), rtx_pt, rtx_seq, rtx_ssrc)
    oracle = aiortc_wrap_rtx(RtpPacket.parse(data, EXT_MAP), payload_type=rtx_pt,
                             sequence_number=rtx_seq, ssrc=rtx_ssrc)
    assert wrapped == oracle.serialize(EXT_MAP)
    unwrapped = unwrap_rtx(wrapped, parse_header(wrapped), p["pt"], p["ssrc"])
    assert unwrapped == data


def test_sequence_check_drops_wild_jumps_and_follows_restarts() -> None:
    check = SequenceCheck()
    assert [check.check(s) for s in (100, 101, 103, 102, 150)] == [Verdict.ACCEPT] * 5
    assert check.check(40000) is Verdict.DROP  # one wild packet
    assert check.check(151) is Verdict.ACCEPT
    assert check.check(20000) is Verdict.DROP
    assert check.check(20001) is Verdict.RESTART  # the sender really jumped
    assert check.check(20002) is Verdict.ACCEPT
    assert check.check(19990) is Verdict.ACCEPT  # late, within the misorder window


@given(st.integers(0, 0xFFFF), st.lists(st.integers(1, MAX_DROPOUT - 1), max_size=50))
def test_sequence_check_accepts_any_forward_progress_with_loss(start: int, gaps: list[int]):
    check, seq = SequenceCheck(), start
    assert check.check(seq) is Verdict.ACCEPT
    for gap in gaps:
        seq = (seq + gap) & 0xFFFF
        assert check.check(seq) is Verdict.ACCEPT


_VERDICTS = {Verdict.ACCEPT: 0, Verdict.RESTART: 1, Verdict.DROP: 2}


class _ReferenceStream:
    """The twin of the native ReceiveStream: the sequence check, aiortc's StreamStatistics and
    (with ``nack``) its NackGenerator, both started over at a restart, as the router used them."""

    def __init__(self, clock_rate: int, nack: bool = False) -> None:
        self.clock_rate = clock_rate
        self.check = SequenceCheck()
        self.stats = StreamStatistics(clock_rate)
        self.nack = NackGenerator() if nack else None

    def add(self, seq: int, timestamp: int, now: float) -> int:
        verdict = self.check.check(seq)
        if verdict is Verdict.RESTART:
            self.stats = StreamStatistics(self.clock_rate)
            if self.nack is not None:
                self.nack = NackGenerator()
        if verdict is Verdict.DROP:
            return _VERDICTS[verdict]
        packet = mock.Mock(sequence_number=seq, timestamp=timestamp)
        # aiortc reads the arrival time from time.time() itself.
        with mock.patch("aiortc.rtcrtpreceiver.time", mock.Mock(time=lambda: now)):
            self.stats.add(packet)
        if self.nack is not None and self.nack.add(packet):
            return 3  # accepted, with new losses to NACK
        return _VERDICTS[verdict]

    @property
    def missing(self) -> list[int]:
        return sorted(self.nack.missing) if self.nack is not None else []


def _same_statistics(native: ReceiveStream, reference: _ReferenceStream) -> None:
    stats = reference.stats
    assert (native.base_seq, native.max_seq, native.cycles, native.packets_received,
            native.jitter) == (stats.base_seq, stats.max_seq, stats.cycles,
                               stats.packets_received, stats.jitter)
    if stats.max_seq is not None:
        assert (native.packets_expected, native.packets_lost) == (
            stats.packets_expected, stats.packets_lost)


@settings(max_examples=300)
@given(st.sampled_from([8000, 48000, 90000]), st.integers(0, 0xFFFF),
       st.integers(0, 0xFFFFFFFF),
       st.lists(st.tuples(
           st.one_of(st.integers(-3, 5), st.integers(-200, 200),
                     st.integers(0, 0xFFFF)),  # next, reordered, wild
           st.integers(-4000, 4000), st.floats(0, 0.2), st.booleans()), max_size=60))
def test_receive_stream_agrees_with_sequence_check_and_aiortc_statistics(
        clock_rate: int, seq: int, timestamp: int, steps: list) -> None:
    """Verdicts, statistics and the fraction lost read at report times, packet by packet."""
    native, reference = ReceiveStream(clock_rate), _ReferenceStream(clock_rate)
    now = 1_700_000_000.0
    for step, ts_step, dt, report in steps:
        seq = (seq + step) & 0xFFFF
        timestamp = (timestamp + ts_step) & 0xFFFFFFFF
        now += dt
        assert native.add(seq, timestamp, now) == reference.add(seq, timestamp, now)
        _same_statistics(native, reference)
        if report and reference.stats.max_seq is not None:
            assert native.fraction_lost == reference.stats.fraction_lost


@settings(max_examples=300)
@given(st.integers(0, 0xFFFF),
       st.lists(st.one_of(st.integers(-3, 5), st.integers(-200, 200),
                          st.integers(0, 0xFFFF)),  # next, reordered, wild
                max_size=80))
def test_receive_stream_nacks_as_aiortc_nack_generator(seq: int, steps: list[int]) -> None:
    """With nack: the verdicts (3 where aiortc's NackGenerator reports new losses) and the
    missing sequence numbers, packet by packet, across gaps, reordering, restarts and
    wrap-around."""
    native, reference = ReceiveStream(90000, nack=True), _ReferenceStream(90000, nack=True)
    for step in steps:
        seq = (seq + step) & 0xFFFF
        assert native.add(seq, 0, 0.0) == reference.add(seq, 0, 0.0)
        assert native.missing == reference.missing


def test_receive_stream_nacks_only_when_asked() -> None:
    plain, nacking = ReceiveStream(90000), ReceiveStream(90000, nack=True)
    assert [plain.add(s, 0, 0.0) for s in (1, 2, 5)] == [0, 0, 0]
    assert [nacking.add(s, 0, 0.0) for s in (1, 2, 5)] == [0, 0, 3]
    assert (plain.missing, nacking.missing) == ([], [3, 4])
    assert nacking.add(3, 0, 0.0) == 0 and nacking.missing == [4]


def test_receive_stream_drops_wild_jumps_and_restarts_its_statistics() -> None:
    stream = ReceiveStream(90000)
    assert [stream.add(s, 0, 0.0) for s in (100, 101, 103, 102, 150)] == [0] * 5
    assert stream.packets_lost == 150 - 100 + 1 - 5
    assert stream.add(40000, 0, 0.0) == 2  # one wild packet, not counted
    assert stream.packets_received == 5
    assert stream.add(20000, 0, 0.0) == 2
    assert stream.add(20001, 0, 0.0) == 1  # the sender really jumped: counting starts over
    assert (stream.base_seq, stream.packets_received, stream.packets_lost) == (20001, 1, 0)
