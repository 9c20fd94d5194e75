"""Receive-side repair of lost video packets: retransmissions reach their receiver, and a video
jitter buffer stuck on a gap recovers at a keyframe instead of waiting for the gap to fall out.

Two things in aiortc (1.16) keep one lost packet from ever being repaired:

- ``RtpRouter.register_receiver`` learns a receiver's media SSRCs but not their RTX SSRCs. A
  packet from an unknown SSRC goes to the one receiver of its payload type, and is dropped when
  several receivers share it: on a connection receiving more than one video (every subscriber of
  a group room) no retransmission (RFC 4588) reaches a receiver, so a NACK never repairs a loss.
  :func:`install` adds the RTX SSRCs of the remote description to the router.
- The video jitter buffer hands frames out in sequence-number order and holds every later frame
  until a missing packet arrives; it gives up only when the gap is a whole buffer (512 packets)
  behind the newest packet: at 5 frames/s of one packet each, 100 s. The receiver NACKs a gap
  once, and again only when a newer gap appears. :class:`RepairingJitterBuffer` asks again for
  a gap's packets, ``RENACK`` seconds after the last ask and doubling, and bounds the wait as
  libwebrtc does: a frame that stays undecodable for ``STALL`` seconds is dropped with
  everything before it, and decoding resumes at the next keyframe held, asking the sender for one
  (PLI, RFC 4585 6.3.1) until it arrives.

Relies on: ``RTCDtlsTransport._register_rtp_receiver(receiver, parameters)`` and its
``_rtp_router.ssrc_table``, ``RTCRtpDecodingParameters.rtx``, the name ``JitterBuffer`` in
``aiortc.rtcrtpreceiver`` (its ``_packets``, ``_origin``, ``_capacity``, ``remove`` and
``_remove_frame``; ``add`` returning ``(pli_flag, frame)``, the receiver sending a PLI on the
flag), ``RTCRtpReceiver.receive(parameters)``, its ``_RTCRtpReceiver__jitter_buffer`` and
``_RTCRtpReceiver__nack_generator`` (a ``NackGenerator``, whose ``missing`` set it prunes) and
``_send_rtcp_nack(media_ssrc, lost)``;
checked by tests/test_aiortc_ext_repair.py.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

from rtcroom.media.keyframe import KEYFRAME_TESTS

__all__ = ["RENACK", "STALL", "RepairingJitterBuffer", "install", "starts_keyframe"]

STALL = 0.5
"""Seconds a video frame may wait for a missing packet (several round trips of NACK and
retransmission on any path a room serves) before it is given up."""

RENACK = 0.1
"""Seconds after a gap was NACKed before it is NACKed again (doubling each time, until the
frame is given up at ``STALL``): a lost retransmission is asked for again."""

_PATCHED = "_rtcroom_repair"


def starts_keyframe(mime_type: str, payload: bytes) -> bool | None:
    """Whether an RTP ``payload`` of codec ``mime_type`` starts a keyframe (the SFU's test,
    :data:`rtcroom.media.keyframe.KEYFRAME_TESTS`); None for a codec it cannot tell."""
    test = KEYFRAME_TESTS.get(mime_type.lower())
    return None if test is None else test(payload, 0, len(payload))


class RepairingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer with a bound on how long a gap holds later frames.

    ``codecs`` (payload type -> codec, set when the receiver starts) tells keyframes apart; with
    none known for a packet, decoding resumes at the next frame and the decoder's error asks for
    the keyframe. ``clock`` is for tests."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity, prefetch=prefetch, is_video=is_video)
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self.nack: NackGenerator | None = None
        """The receiver's NACK generator: what a skip gives up is no longer asked for."""
        self.send_nack: Callable[[int, list[int]], None] | None = None
        """Sends a NACK for (media SSRC, sequence numbers): asks again for a gap's packets."""
        self.stalls = 0
        """Frames given up on since the buffer started."""
        self._clock = clock
        self._waiting_since: float | None = None
        self._nacked_at: float | None = None
        self._renack = RENACK
        self._asked_at: float | None = None
        self._need_keyframe = False

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        now = self._clock()
        if frame is not None:
            self._waiting_since = self._asked_at = None
            self._need_keyframe = False
            return pli, frame
        if not self._is_video or not self._held_past_gap(packet):
            return pli, None
        if self._waiting_since is None:
            # The receiver's NACK generator asked for the gap when it first saw it.
            self._waiting_since = self._nacked_at = now
            self._renack = RENACK
        elif (self.send_nack is not None and self._nacked_at is not None
              and now - self._nacked_at >= self._renack):
            self._nacked_at = now
            self._renack *= 2
            self.send_nack(packet.ssrc, self._holes(packet.sequence_number))
        if now - self._waiting_since >= STALL and not self._need_keyframe:
            self.stalls += 1
            self._need_keyframe = True
        if self._need_keyframe:
            skipped, frame = self._skip_to_keyframe()
            if skipped:
                # A keyframe still arriving gets the same time to complete.
                self._need_keyframe = False
                self._asked_at = None
                self._waiting_since = None if frame is not None else now
            elif self._asked_at is None or now - self._asked_at >= STALL:
                self._asked_at = now
                pli = True
        return pli, frame

    def _held_past_gap(self, packet: RtpPacket) -> bool:
        """Whether ``packet``, just held, waits behind an incomplete earlier frame (the oldest
        frame alone still arriving is no stall)."""
        if self._origin is None or self._packets[packet.sequence_number % self._capacity] \
                is not packet:
            return False  # one too old to keep
        head = self._packets[self._origin % self._capacity]
        return head is None or head.timestamp != packet.timestamp

    def _holes(self, newest: int) -> list[int]:
        """The sequence numbers missing between the oldest packet held and ``newest``."""
        assert self._origin is not None
        count = min(uint16_add(newest, -self._origin), self._capacity)
        return [seq for i in range(count) if self._packets[
            (seq := uint16_add(self._origin, i)) % self._capacity] is None]

    def _skip_to_keyframe(self) -> tuple[bool, JitterFrame | None]:
        """Drop what precedes the first keyframe held after the oldest frame (the first frame
        start, for a codec whose keyframes it cannot tell): whether it found one, and that
        frame if it is complete."""
        assert self._origin is not None
        for i in range(1, self._capacity):
            seq = uint16_add(self._origin, i)
            packet = self._packets[seq % self._capacity]
            if packet is None:
                continue
            codec = self.codecs.get(packet.payload_type)
            keyframe = starts_keyframe(codec.mimeType, packet.payload) if codec else None
            if keyframe is None:
                before = self._packets[uint16_add(seq, -1) % self._capacity]
                keyframe = before is not None and before.timestamp != packet.timestamp
            if keyframe:
                self.remove(i)
                if self.nack is not None:
                    self.nack.missing = {s for s in self.nack.missing if not uint16_gt(seq, s)}
                return True, self._remove_frame(seq)
        return False, None


def _jitter_buffer(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    if is_video:
        return RepairingJitterBuffer(capacity, prefetch=prefetch, is_video=True)
    return JitterBuffer(capacity, prefetch=prefetch, is_video=is_video)


def install() -> None:
    """Route RTX to its receiver and bound video jitter-buffer stalls (idempotent)."""
    register = RTCDtlsTransport._register_rtp_receiver
    if getattr(register, _PATCHED, False):
        return

    @functools.wraps(register)
    def register_rtp_receiver(self: RTCDtlsTransport, receiver: Any, parameters: Any) -> None:
        register(self, receiver, parameters)
        for encoding in parameters.encodings:
            if encoding.rtx is not None:
                self._rtp_router.ssrc_table[encoding.rtx.ssrc] = receiver

    receive = RTCRtpReceiver.receive

    @functools.wraps(receive)
    async def receive_with_codecs(self: RTCRtpReceiver, parameters: Any) -> None:
        await receive(self, parameters)
        buffer = self._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
        if isinstance(buffer, RepairingJitterBuffer):
            buffer.codecs = {c.payloadType: c for c in parameters.codecs}
            buffer.nack = self._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]

            def send_nack(ssrc: int, lost: list[int]) -> None:
                if lost:
                    asyncio.ensure_future(self._send_rtcp_nack(ssrc, lost))

            buffer.send_nack = send_nack

    setattr(register_rtp_receiver, _PATCHED, True)
    RTCDtlsTransport._register_rtp_receiver = register_rtp_receiver  # type: ignore[method-assign]
    RTCRtpReceiver.receive = receive_with_codecs  # type: ignore[method-assign]
    aiortc.rtcrtpreceiver.JitterBuffer = _jitter_buffer  # type: ignore[misc,assignment]


install()
