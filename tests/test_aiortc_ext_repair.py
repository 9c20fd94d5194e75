"""rtcroom.aiortc_ext.repair without a network: RTX reaches its receiver when several share a
payload type, and a video jitter buffer stuck on a gap resumes at a keyframe."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiortc import RTCRtpCodecParameters
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcrtpparameters import (
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from rtcroom.aiortc_ext import repair
from rtcroom.aiortc_ext.repair import RENACK, STALL, RepairingJitterBuffer, starts_keyframe

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97,
                            parameters={"apt": 96})


def vp8_payload(keyframe: bool, start: bool = True) -> bytes:
    descriptor = bytes(VpxPayloadDescriptor(partition_start=int(start), partition_id=0))
    # Frame tag: P bit (bit 0) clear on keyframes.
    return descriptor + bytes([0x00 if keyframe else 0x01]) + b"\x00" * 20


def test_rtx_is_routed_to_its_receiver_among_several_of_one_payload_type() -> None:
    transport = SimpleNamespace(_rtp_router=RtpRouter(),
                                _rtp_header_extensions_map=HeaderExtensionsMap())
    receivers = [object(), object()]
    for n, receiver in enumerate(receivers):
        RTCDtlsTransport._register_rtp_receiver(transport, receiver, RTCRtpReceiveParameters(
            codecs=[VP8, RTX], encodings=[RTCRtpDecodingParameters(
                ssrc=1000 + n, payloadType=96, rtx=RTCRtpRtxParameters(ssrc=2000 + n))]))
    router = transport._rtp_router
    for n, receiver in enumerate(receivers):
        assert router.route_rtp(RtpPacket(payload_type=97, ssrc=2000 + n)) is receiver
        assert router.route_rtp(RtpPacket(payload_type=96, ssrc=1000 + n)) is receiver


def test_install_is_idempotent_and_replaces_aiortcs_video_jitter_buffer() -> None:
    import aiortc.rtcrtpreceiver

    register = RTCDtlsTransport._register_rtp_receiver
    repair.install()
    assert RTCDtlsTransport._register_rtp_receiver is register
    video = aiortc.rtcrtpreceiver.JitterBuffer(capacity=512, is_video=True)
    audio = aiortc.rtcrtpreceiver.JitterBuffer(capacity=16, prefetch=4)
    assert isinstance(video, RepairingJitterBuffer)
    assert type(audio) is JitterBuffer


def test_keyframe_starts() -> None:
    assert starts_keyframe("video/VP8", vp8_payload(True)) is True
    assert starts_keyframe("video/VP8", vp8_payload(False)) is False
    assert starts_keyframe("video/VP8", vp8_payload(True, start=False)) is False
    assert starts_keyframe("video/H264", bytes([0x65, 0])) is True  # IDR slice
    assert starts_keyframe("video/H264", bytes([0x41, 0])) is False  # non-IDR slice
    assert starts_keyframe("video/H264", bytes([0x7C, 0x85, 0])) is True  # FU-A start of IDR
    assert starts_keyframe("video/H264", bytes([0x7C, 0x05, 0])) is False  # FU-A middle
    stap = bytes([0x78]) + (2).to_bytes(2, "big") + bytes([0x67, 0])
    assert starts_keyframe("video/H264", stap) is True  # STAP-A with an SPS
    assert starts_keyframe("video/VP8", b"") is False
    assert starts_keyframe("audio/opus", b"\x00") is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def packet(seq: int, frame: int, keyframe: bool = False) -> RtpPacket:
    """One-packet frames: `frame` numbers them (timestamp 3000 apart)."""
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=3000 * frame,
                  payload=vp8_payload(keyframe))
    p._data = p.payload  # type: ignore[attr-defined]  # what the receiver's depayload leaves
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket], clock: Clock,
         step: float = 0.2) -> tuple[list[int], int]:
    """Timestamps of the frames handed out, and the PLIs asked for."""
    frames, plis = [], 0
    for p in packets:
        pli, frame = buffer.add(p)
        plis += pli
        if frame is not None:
            frames.append(frame.timestamp)
        clock.now += step
    return frames, plis


def lossy_stream() -> list[RtpPacket]:
    # Frame 0 a keyframe; packet 2 (frame 2) lost for good; a keyframe again at frame 12.
    return [packet(s, s, keyframe=s in (0, 12)) for s in range(20) if s != 2]


@pytest.mark.parametrize("codecs", [{96: VP8}, {}], ids=["vp8", "unknown-codec"])
def test_a_gap_never_filled_is_given_up_after_the_stall_bound(codecs: dict) -> None:
    clock = Clock()
    buffer = RepairingJitterBuffer(512, is_video=True, clock=clock)
    buffer.codecs = codecs
    frames, plis = feed(buffer, lossy_stream(), clock)
    assert frames[:1] == [0]
    assert buffer.stalls >= 1
    if codecs:
        # Frames 3-11 are deltas on the lost one: skipped, and a keyframe asked for until frame
        # 12 arrives; decoding resumes there.
        assert plis >= 1
        assert frames[1:] == [3000 * f for f in range(12, 19)]
    else:
        # Without keyframes to tell, decoding resumes at the next frame start (frame 3 or 4,
        # depending on when the bound passed); the decoder's error asks for a keyframe.
        assert frames[1] in (9000, 12000)
        assert frames[1:] == list(range(frames[1], frames[-1] + 1, 3000))
        assert frames[-1] >= 3000 * 17  # aiortc hands out one frame per packet added


def test_aiortcs_own_buffer_holds_every_frame_behind_the_gap() -> None:
    # The behaviour repaired: the oracle for the test above.
    frames, plis = feed(JitterBuffer(512, is_video=True), lossy_stream(), Clock())
    assert frames == [0]
    assert plis == 0


def test_a_gap_filled_within_the_bound_costs_no_keyframe() -> None:
    clock = Clock()
    buffer = RepairingJitterBuffer(512, is_video=True, clock=clock)
    buffer.codecs = {96: VP8}
    stream = lossy_stream()
    stream.insert(3, packet(2, 2))  # the retransmission, two frames late (0.4 s < STALL)
    assert 2 * 0.2 < STALL
    frames, plis = feed(buffer, stream, clock)
    # aiortc hands out one frame per packet added: the frame the gap held is one behind.
    assert frames == [3000 * f for f in range(18)]
    assert (plis, buffer.stalls) == (0, 0)


def test_a_skip_stops_the_nacks_for_what_it_gave_up() -> None:
    clock = Clock()
    buffer = RepairingJitterBuffer(512, is_video=True, clock=clock)
    buffer.codecs = {96: VP8}
    nack = buffer.nack = NackGenerator()
    for p in lossy_stream():
        nack.add(p)
        buffer.add(p)
        clock.now += 0.2
    assert buffer.stalls == 1
    assert 2 not in nack.missing


def test_a_gap_is_nacked_again_with_backoff_until_given_up() -> None:
    clock = Clock()
    buffer = RepairingJitterBuffer(512, is_video=True, clock=clock)
    buffer.codecs = {96: VP8}
    asked: list[tuple[float, int, list[int]]] = []
    buffer.send_nack = lambda ssrc, lost: asked.append((round(clock.now - 100, 2), ssrc, lost))
    feed(buffer, lossy_stream(), clock, step=0.05)
    # Packet 3 (t=0.10) found the gap (the receiver's own NACK); asked again at least RENACK
    # later, then at least twice that, then the frame was given up (at STALL) and no more asked.
    assert [lost for _, _, lost in asked] == [[2], [2]]
    assert {ssrc for _, ssrc, _ in asked} == {lossy_stream()[0].ssrc}
    first, second = (t for t, _, _ in asked)
    assert first - 0.10 >= RENACK - 1e-9 and second - first >= 2 * RENACK - 1e-9
    assert second - 0.10 < STALL
    assert buffer.stalls == 1


def test_a_retransmission_answering_a_second_nack_repairs_the_gap() -> None:
    clock = Clock()
    buffer = RepairingJitterBuffer(512, is_video=True, clock=clock)
    buffer.codecs = {96: VP8}
    stream = lossy_stream()
    buffer.send_nack = lambda ssrc, lost: stream.insert(stream.index(current[0]) + 1,
                                                        packet(2, 2))
    frames, plis = [], 0
    current: list[RtpPacket] = []
    for p in stream:
        current[:] = [p]
        pli, frame = buffer.add(p)
        plis += pli
        if frame is not None:
            frames.append(frame.timestamp)
        clock.now += 0.05
    # Everything decodes, in order (one frame out per packet in: the backlog stays behind).
    assert frames == [3000 * f for f in range(len(frames))] and len(frames) >= 15
    assert (plis, buffer.stalls) == (0, 0)
