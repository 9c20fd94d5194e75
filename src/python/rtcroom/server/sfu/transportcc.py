"""Transport-wide congestion control feedback to publishers
(draft-holmer-rmcat-transport-wide-cc-extensions-01).

A browser decides how much to send, and how many simulcast layers, from its send-side bandwidth
estimate; that estimate grows only on feedback about when each of its packets arrived. A sender
numbers every packet of a connection (all its tracks, retransmissions and probes) in the
transport-wide sequence number header extension; the SFU records each number with the packet's
arrival time (:class:`TransportFeedbackRecorder`, plain data) and every
:data:`FEEDBACK_INTERVAL` reports them in RTCP transport feedback packets (RTPFB, FMT 15), one
:class:`TransportFeedback` per publisher connection shared by the tracks received on it.

Wire format, per the draft: the RTCP feedback header (SSRC of packet sender, SSRC of media
source), base sequence number and packet status count (16 bits each), reference time (24 bits,
signed, units of 64 ms) and feedback packet count (8 bits), packet status chunks (16 bits each:
run length, or a vector of 14 one-bit or 7 two-bit symbols; symbols 0 not received, 1 received
with a small delta, 2 received with a large or negative delta), then one receive delta per
received packet in units of 250 us (one byte unsigned for a small delta, two bytes signed for a
large one), each from the previous received packet's arrival (the first from the reference
time), and zero padding to 32 bits.
"""

from __future__ import annotations

import asyncio
import struct
import time
import weakref

from aiortc import RTCRtpReceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport

from rtcroom.aiortc_ext.rtp import receiver_rtcp_ssrc, send_rtp
from rtcroom.aiortc_ext.transportcc import TRANSPORT_CC_URI

__all__ = ["FEEDBACK_INTERVAL", "TRANSPORT_CC_URI", "TransportFeedback",
           "TransportFeedbackRecorder", "acquire_transport_feedback",
           "release_transport_feedback", "transport_feedback"]

FEEDBACK_INTERVAL = 0.05
"""Seconds between feedback packets: libwebrtc's receivers send every 50 to 250 ms; the sooner
the sender hears, the sooner its estimate moves."""

RTCP_RTPFB = 205
RTCP_RTPFB_TRANSPORT_CC = 15

DELTA_TICK_US = 250
REFERENCE_TICK_US = 64_000
_TICKS_PER_REFERENCE = REFERENCE_TICK_US // DELTA_TICK_US

MAX_SPAN = 1 << 14
"""Sequence numbers reported at most per feedback round: a sender that jumps further (a restart)
has the older ones skipped."""

_MAX_PACKET_BODY = 1000
"""Bytes of chunks and deltas per feedback packet (well inside one datagram)."""

_RUN_LENGTH_MAX = (1 << 13) - 1
_header = struct.Struct("!BBHIIHHI")


class TransportFeedbackRecorder:
    """Transport-wide sequence numbers and arrival times of one connection's packets, and the
    feedback packets reporting them."""

    def __init__(self, epoch: float | None = None) -> None:
        self._epoch = time.monotonic() if epoch is None else epoch
        """The time reference times count from (monotonic seconds): well inside their 24 bits
        (12 days) for the connection's life."""
        self._arrivals: dict[int, float] = {}
        """Unwrapped sequence number -> arrival (monotonic seconds), not yet reported."""
        self._highest: int | None = None
        """Highest unwrapped sequence number received, None before the first."""
        self._reported: int | None = None
        """Highest sequence number reported, None before the first feedback."""
        self._feedback_count = 0
        self.media_ssrc = 0
        """An SSRC the connection's packets came from (the feedback's media source field)."""

    def received(self, value: bytes | None, ssrc: int, arrival: float) -> None:
        """Record a packet: ``value`` is its transport-wide sequence number extension element
        (None when the packet has none), ``arrival`` its ``time.monotonic()``."""
        if value is None or len(value) < 2:
            return
        number = (value[0] << 8) | value[1]
        highest = self._highest
        if highest is None:
            seq = self._highest = number
        else:
            seq = highest + (((number - highest + 0x8000) & 0xFFFF) - 0x8000)
            if seq > highest:
                self._highest = seq
        reported = self._reported
        if reported is None or seq > reported:
            # (One later than its feedback, reordered past it, was reported lost already.)
            self._arrivals.setdefault(seq, arrival)
        self.media_ssrc = ssrc

    def feedback(self, sender_ssrc: int) -> list[bytes]:
        """RTCP transport feedback packets for everything received since the last call, from
        the first number not reported yet to the highest received."""
        arrivals = self._arrivals
        if not arrivals:
            return []
        self._arrivals = {}
        last = max(arrivals)
        first = min(arrivals) if self._reported is None else self._reported + 1
        self._reported = last
        if last - first >= MAX_SPAN:
            first = last - MAX_SPAN + 1
        packets = []
        start = first
        while start <= last:
            packet, start = self._packet(sender_ssrc, start, last, arrivals)
            if packet is not None:
                packets.append(packet)
        return packets

    def _packet(self, sender_ssrc: int, base: int, last: int,
                arrivals: dict[int, float]) -> tuple[bytes | None, int]:
        """One feedback packet from ``base`` on, and the first number it leaves out; None
        for a stretch with nothing received (a sender counts only what is reported)."""
        symbols: list[int] = []
        deltas = bytearray()
        reference: int | None = None
        previous = 0  # arrival of the previous received packet, in delta ticks
        seq = base
        while seq <= last and len(deltas) + 2 * (len(symbols) // 7 + 1) < _MAX_PACKET_BODY:
            arrival = arrivals.get(seq)
            if arrival is None:
                symbols.append(0)
            else:
                ticks = round((arrival - self._epoch) * 1_000_000) // DELTA_TICK_US
                if reference is None:
                    reference = ticks // _TICKS_PER_REFERENCE
                    previous = reference * _TICKS_PER_REFERENCE
                delta = ticks - previous
                if 0 <= delta <= 0xFF:
                    symbols.append(1)
                    deltas.append(delta)
                elif -0x8000 <= delta <= 0x7FFF:
                    symbols.append(2)
                    deltas += delta.to_bytes(2, "big", signed=True)
                else:
                    break  # not expressible from here: the next packet starts with it
                previous = ticks
            seq += 1
        if reference is None:
            return None, seq
        chunks = _chunks(symbols)
        body = len(chunks) + len(deltas)
        padding = -body % 4
        length = (_header.size + body + padding) // 4 - 1
        header = _header.pack(
            (2 << 6) | (0x20 if padding else 0) | RTCP_RTPFB_TRANSPORT_CC, RTCP_RTPFB, length,
            sender_ssrc, self.media_ssrc, base & 0xFFFF, len(symbols),
            ((reference & 0xFFFFFF) << 8) | (self._feedback_count & 0xFF))
        self._feedback_count += 1
        pad = bytes(padding - 1) + bytes([padding]) if padding else b""
        return header + chunks + deltas + pad, seq


def _chunks(symbols: list[int]) -> bytes:
    """Packet status chunks for ``symbols``: runs where they are long, else vectors (one-bit
    symbols where the next 14 allow it). A vector's slots past the end stay 0, which the
    status count leaves unread."""
    out = bytearray()
    i, n = 0, len(symbols)
    while i < n:
        symbol = symbols[i]
        run = 1
        while i + run < n and symbols[i + run] == symbol and run < _RUN_LENGTH_MAX:
            run += 1
        if run >= 14 or (run >= 7 and any(s > 1 for s in symbols[i:i + 14])):
            chunk = (symbol << 13) | run
            i += run
        elif all(s < 2 for s in symbols[i:i + 14]):
            chunk = 0x8000
            for k, s in enumerate(symbols[i:i + 14]):
                chunk |= s << (13 - k)
            i += 14
        else:
            chunk = 0xC000
            for k, s in enumerate(symbols[i:i + 7]):
                chunk |= s << (12 - 2 * k)
            i += 7
        out += chunk.to_bytes(2, "big")
    return bytes(out)


class TransportFeedback:
    """The feedback of one publisher connection: a recorder the tracks received on it record
    into, and a task sending what it recorded every :data:`FEEDBACK_INTERVAL`."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.transport: RTCDtlsTransport = receiver.transport
        self.recorder = TransportFeedbackRecorder()
        self.users = 0
        self.packets_sent = 0
        self._receiver = receiver
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FEEDBACK_INTERVAL)
            ssrc = receiver_rtcp_ssrc(self._receiver)
            if ssrc is None:
                continue
            packets = self.recorder.feedback(ssrc)
            if packets and await send_rtp(self.transport, b"".join(packets)):
                self.packets_sent += len(packets)

    def close(self) -> None:
        self._task.cancel()


_feedbacks: weakref.WeakKeyDictionary[RTCDtlsTransport, TransportFeedback] = (
    weakref.WeakKeyDictionary())


def acquire_transport_feedback(receiver: RTCRtpReceiver) -> TransportFeedbackRecorder:
    """The recorder of ``receiver``'s connection, whose feedback runs until every receiver that
    acquired it released it. Call once the receiver's transport is final."""
    feedback = _feedbacks.get(receiver.transport)
    if feedback is None:
        feedback = _feedbacks[receiver.transport] = TransportFeedback(receiver)
    feedback.users += 1
    return feedback.recorder


def release_transport_feedback(receiver: RTCRtpReceiver) -> None:
    feedback = _feedbacks.get(receiver.transport)
    if feedback is None:
        return
    feedback.users -= 1
    if feedback.users <= 0:
        feedback.close()
        del _feedbacks[receiver.transport]


def transport_feedback(transport: RTCDtlsTransport) -> TransportFeedback | None:
    """The feedback running on ``transport`` (for statistics and tests), if any."""
    return _feedbacks.get(transport)
