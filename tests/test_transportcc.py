"""Transport-wide congestion control: the feedback packets the SFU builds
(rtcroom.server.sfu.transportcc) against hand-built bytes and, round trip, against a reader of
the draft's format written here; and its negotiation (rtcroom.aiortc_ext.transportcc)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCSessionDescription
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_peers import PatternTrack
from rtcroom.aiortc_ext.peerconnection import bundled_peer_connection
from rtcroom.aiortc_ext.transportcc import TRANSPORT_CC_URI
from rtcroom.server.sfu.transportcc import TransportFeedbackRecorder


@dataclass
class Feedback:
    sender_ssrc: int
    media_ssrc: int
    base: int
    feedback_count: int
    arrivals: list[int | None]
    """Per sequence number from base on: arrival in microseconds from the epoch, or None."""


def parse_feedback(data: bytes) -> tuple[Feedback, bytes]:
    """Read one transport feedback packet as the draft lays it out; it and what follows it."""
    first, pt, length = struct.unpack_from("!BBH", data)
    assert first >> 6 == 2 and first & 0x1F == 15 and pt == 205
    size = 4 * (length + 1)
    packet, rest = data[:size], data[size:]
    assert len(packet) == size
    if first & 0x20:
        packet = packet[:-packet[-1]]
    sender, media, base, count, word = struct.unpack_from("!IIHHI", packet, 4)
    reference = word >> 8
    if reference & 0x800000:
        reference -= 1 << 24
    symbols: list[int] = []
    pos = 20
    while len(symbols) < count:
        (chunk,) = struct.unpack_from("!H", packet, pos)
        pos += 2
        if not chunk & 0x8000:
            symbols += [(chunk >> 13) & 3] * (chunk & 0x1FFF)
        elif not chunk & 0x4000:
            symbols += [(chunk >> (13 - k)) & 1 for k in range(14)]
        else:
            symbols += [(chunk >> (12 - 2 * k)) & 3 for k in range(7)]
    symbols = symbols[:count]
    time_us = reference * 64_000
    arrivals: list[int | None] = []
    for symbol in symbols:
        assert symbol != 3
        if symbol == 0:
            arrivals.append(None)
            continue
        if symbol == 1:
            delta = packet[pos]
            pos += 1
        else:
            (delta,) = struct.unpack_from("!h", packet, pos)
            pos += 2
        time_us += delta * 250
        arrivals.append(time_us)
    assert len(packet) - pos < 4  # only the padding to 32 bits is left
    return Feedback(sender, media, base, word & 0xFF, arrivals), rest


def parse_all(packets: list[bytes]) -> list[Feedback]:
    out = []
    for data in packets:
        feedback, rest = parse_feedback(data)
        assert rest == b""
        out.append(feedback)
    return out


def seq(n: int) -> bytes:
    return (n & 0xFFFF).to_bytes(2, "big")


def test_a_feedback_packet_byte_for_byte() -> None:
    recorder = TransportFeedbackRecorder(epoch=0.0)
    # 102 overtakes 101; 103 is lost.
    for number, arrival in ((100, 1.000), (102, 1.001), (101, 1.002), (104, 1.003)):
        recorder.received(seq(number), 0x1234, arrival)
    [packet] = recorder.feedback(0xABCD)
    assert packet == bytes.fromhex(
        "afcd0006" "0000abcd" "00001234"
        "00640005"  # base sequence number 100, 5 statuses
        "00000f00"  # reference time 15 x 64 ms = 960 ms, feedback count 0
        "d610"  # two-bit vector: small, small, large, not received, small
        "a0" "08" "fffc" "08"  # 1000 ms - 960 ms = 160 ticks, +2 ms, -1 ms, +2 ms
        "01")  # one byte of padding
    assert recorder.feedback(0xABCD) == []
    recorder.received(seq(105), 0x1234, 1.004)
    [later] = parse_all(recorder.feedback(0xABCD))
    assert (later.base, later.feedback_count, later.arrivals) == (105, 1, [1_004_000])


def test_packets_without_the_extension_are_not_counted() -> None:
    recorder = TransportFeedbackRecorder(epoch=0.0)
    recorder.received(None, 1, 1.0)
    recorder.received(b"\x01", 1, 1.0)
    assert recorder.feedback(1) == []


def test_runs_of_received_and_lost_packets() -> None:
    recorder = TransportFeedbackRecorder(epoch=0.0)
    for n in range(40):
        recorder.received(seq(65_500 + n), 7, 2.0 + n * 0.001)  # wraps at 65535
    for n in range(200, 220):
        recorder.received(seq(65_500 + n), 7, 2.5 + n * 0.001)
    [feedback] = parse_all(recorder.feedback(9))
    assert feedback.base == 65_500 and feedback.media_ssrc == 7 and feedback.sender_ssrc == 9
    assert feedback.arrivals[40:200] == [None] * 160
    assert feedback.arrivals[:40] == [2_000_000 + n * 1000 for n in range(40)]
    assert feedback.arrivals[200:] == [2_500_000 + n * 1000 for n in range(200, 220)]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF),
       st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 20_000_000)), min_size=1,
                max_size=300),
       st.integers(1, 4))
def test_round_trip(start: int, packets: list[tuple[int, int]], rounds: int) -> None:
    """Every packet reported once, at its arrival to 250 us, in packets that follow on from each
    other; reordering, wrap-around, long gaps and arrival jumps (beyond a 16-bit delta) split
    or fill them as needed."""
    recorder = TransportFeedbackRecorder(epoch=0.0)
    expected: dict[int, int] = {}
    feedbacks: list[Feedback] = []
    reported_up_to = -1
    chunk = max(1, len(packets) // rounds)
    for i in range(0, len(packets), chunk):
        for offset, arrival_us in packets[i:i + chunk]:
            if offset <= reported_up_to:
                continue  # late for its feedback: the recorder counts it lost already
            recorder.received(seq(start + offset), 1, arrival_us / 1e6)
            expected.setdefault(offset, arrival_us // 250 * 250)  # a duplicate: the first
        sent = recorder.feedback(2)
        for packet in sent:
            assert len(packet) <= 1100
        feedbacks += parse_all(sent)
        if expected:
            reported_up_to = max(reported_up_to, max(expected))
    reported: dict[int, int] = {}
    previous_end = None
    for feedback in feedbacks:
        offset = (feedback.base - start) & 0xFFFF
        assert previous_end is None or offset >= previous_end
        assert any(a is not None for a in feedback.arrivals)
        for k, arrival in enumerate(feedback.arrivals):
            if arrival is not None:
                assert offset + k not in reported
                reported[offset + k] = arrival
        previous_end = offset + len(feedback.arrivals)
        assert feedback.feedback_count == feedbacks.index(feedback) % 256
    assert reported == expected


def _with_transport_cc(sdp: str) -> str:
    """``sdp`` as Chromium offers it: the transport-wide sequence number extension and
    transport-cc feedback on every video codec."""
    out = []
    for line in sdp.splitlines():
        out.append(line)
        if line.startswith("m=video"):
            out.append(f"a=extmap:7 {TRANSPORT_CC_URI}")
        match = re.match(r"a=rtpmap:(\d+) VP8/90000", line)
        if match:
            out.append(f"a=rtcp-fb:{match.group(1)} transport-cc")
    return "\r\n".join(out) + "\r\n"


def _negotiates_transport_cc(sdp: str) -> bool:
    return (f"a=extmap:7 {TRANSPORT_CC_URI}" in sdp
            and re.search(r"a=rtcp-fb:\d+ transport-cc", sdp) is not None)


async def test_the_sfu_answers_with_transport_cc_where_offered_and_keeps_it() -> None:
    publisher = RTCPeerConnection()
    sfu = bundled_peer_connection(ice_servers=[], transport_cc=True)
    plain = bundled_peer_connection(ice_servers=[])
    try:
        publisher.addTransceiver(PatternTrack(), direction="sendonly")
        await publisher.setLocalDescription(await publisher.createOffer())
        offer = RTCSessionDescription(_with_transport_cc(publisher.localDescription.sdp),
                                      "offer")
        for pc in (sfu, plain):
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        assert _negotiates_transport_cc(sfu.localDescription.sdp)
        assert not _negotiates_transport_cc(plain.localDescription.sdp)
        assert not _negotiates_transport_cc(publisher.localDescription.sdp.replace(
            "transport-cc", ""))
        [transceiver] = sfu.getTransceivers()
        assert any(e.uri == TRANSPORT_CC_URI and e.id == 7
                   for e in transceiver._headerExtensions)

        # A re-offer of the SFU's keeps it, and so does the publisher's answer to that.
        await publisher.setRemoteDescription(sfu.localDescription)
        sfu.addTransceiver(PatternTrack(), direction="sendonly")
        reoffer = await sfu.createOffer()
        assert _negotiates_transport_cc(reoffer.sdp)
        await sfu.setLocalDescription(reoffer)
        await publisher.setRemoteDescription(sfu.localDescription)
        await publisher.setLocalDescription(await publisher.createAnswer())
        await sfu.setRemoteDescription(RTCSessionDescription(
            _with_transport_cc(publisher.localDescription.sdp), "answer"))
        assert _negotiates_transport_cc((await sfu.createOffer()).sdp)
    finally:
        for pc in (publisher, sfu, plain):
            await pc.close()
