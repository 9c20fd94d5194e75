"""Per-subscriber rewriting of forwarded RTP: SSRC, sequence numbers, timestamps and payload type,
continuous across pauses and source (simulcast layer) switches, with keyframe gating.

Plain numbers and bytes in and out, no asyncio: the per-packet half of the SFU."""

from __future__ import annotations

from rtcroom.server.sfu.rtpheader import RtpHeader, write_extensions, write_header

ABS_SEND_TIME_SCALE = 1 << 18
"""abs-send-time is seconds in 6.18 fixed point, 24 bits."""


def seq_newer(a: int, b: int) -> bool:
    """a is after b in 16-bit sequence number space."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class LegExtensions:
    """The header extensions written on one subscriber's leg: the ids negotiated there (None when
    not negotiated) and that leg's mid, which differs from the publisher's.

    Only the audio level and abs-send-time values change from packet to packet, so the block
    around them is laid out once (`elements` is the general, slower form it must equal)."""

    def __init__(self, mid_id: int | None = None, mid: str = "",
                 audio_level_id: int | None = None, abs_send_time_id: int | None = None) -> None:
        self.mid_id, self.mid = mid_id, mid
        self.audio_level_id, self.abs_send_time_id = audio_level_id, abs_send_time_id
        self._mid = [(mid_id, mid.encode())] if mid_id is not None and mid else []
        ids = [i for i in (mid_id, audio_level_id, abs_send_time_id) if i is not None]
        self._layouts: dict[bool, tuple[bytes, bytes]] | None = None
        if all(0 < i < 15 for i in ids) and len(mid.encode()) <= 16:
            self._layouts = {}
            for level in (False, True):
                size = sum(1 + len(v) for _, v in self._mid) + (2 if level else 0) + (
                    4 if abs_send_time_id is not None else 0)
                pad = -size % 4
                head = (0xBEDE).to_bytes(2, "big") + ((size + pad) // 4).to_bytes(2, "big")
                head += b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in self._mid)
                self._layouts[level] = (head, b"\x00" * pad) if size else (b"", b"")
            self._level_head = bytes([(audio_level_id or 0) << 4])
            self._abs_head = bytes([((abs_send_time_id or 0) << 4) | 2])

    def elements(self, audio_level: bytes | None, now: float) -> list[tuple[int, bytes]]:
        elements = list(self._mid)
        if self.audio_level_id is not None and audio_level is not None and len(audio_level) == 1:
            elements.append((self.audio_level_id, audio_level))
        if self.abs_send_time_id is not None:
            t = int(now * ABS_SEND_TIME_SCALE) & 0xFFFFFF
            elements.append((self.abs_send_time_id, t.to_bytes(3, "big")))
        return elements

    def block(self, audio_level: bytes | None, now: float) -> bytes:
        if self._layouts is None:
            return write_extensions(self.elements(audio_level, now))
        level = (self.audio_level_id is not None and audio_level is not None
                 and len(audio_level) == 1)
        head, pad = self._layouts[level]
        if not head:
            return b""
        out = head + self._level_head + audio_level if level else head  # type: ignore[operator]
        if self.abs_send_time_id is not None:
            t = int(now * ABS_SEND_TIME_SCALE) & 0xFFFFFF
            out += self._abs_head + t.to_bytes(3, "big")
        return out + pad


class Forwarder:
    """Rewrites one source track's packets for one subscriber.

    `select(ssrc)` names the source stream to forward (one simulcast layer, or the only stream);
    `select(None)` pauses. A video forwarder starts, resumes and switches only at a keyframe of the
    selected stream and keeps forwarding the previous one until then; audio switches at once.
    Output sequence numbers have no gaps from switches or pauses, and output timestamps advance
    by the wall-clock time that passed, so the subscriber's decoder sees one continuous stream.
    """

    def __init__(
        self, *, ssrc: int, clock_rate: int, payload_types: dict[int, int],
        extensions: LegExtensions, wait_for_keyframe: bool, first_sequence_number: int,
        first_timestamp: int,
    ) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.payload_types = payload_types
        """Publisher's payload type -> the subscriber's; packets of other types are dropped."""
        self.extensions = extensions
        self.wait_for_keyframe = wait_for_keyframe
        self.source: int | None = None
        self.target: int | None = None
        self.seq_delta = 0
        self.ts_delta = 0
        self.segment_start = 0
        self.last_seq = (first_sequence_number - 1) & 0xFFFF
        self.last_ts = first_timestamp
        self.last_time: float | None = None
        self.packets = 0
        self.octets = 0

    @property
    def wants_keyframe(self) -> bool:
        """Waiting for a keyframe of the selected stream before it can forward it."""
        return self.wait_for_keyframe and self.target is not None and self.target != self.source

    def select(self, ssrc: int | None) -> None:
        self.target = ssrc
        if ssrc is None:
            self.source = None

    def restart(self, ssrc: int) -> None:
        """Stream `ssrc` restarted its numbering: if it is the one forwarded, continue from its
        next packet that can start a stream (a keyframe for video) as after a switch."""
        if self.source == ssrc:
            self.source = None

    def rewrite(
        self, data: bytes, h: RtpHeader, keyframe: bool, now: float,
        audio_level: bytes | None = None,
    ) -> bytes | None:
        """The packet to send to the subscriber, or None to drop it."""
        ssrc = h.ssrc
        if ssrc != self.source:
            if ssrc != self.target or (self.wait_for_keyframe and not keyframe):
                return None
            self._rebase(h, now)
            self.source = ssrc
        elif (h.sequence_number - self.segment_start) & 0xFFFF >= 0x8000:
            return None  # from before this stream was (re)started
        out = self._write(data, h, now, audio_level)
        if out is None:
            return None
        seq = (h.sequence_number + self.seq_delta) & 0xFFFF
        if seq_newer(seq, self.last_seq):
            self.last_seq = seq
            self.last_ts = (h.timestamp + self.ts_delta) & 0xFFFFFFFF
            self.last_time = now
        self.packets += 1
        self.octets += h.payload_end - h.payload_offset
        return out

    def retransmission(
        self, data: bytes, h: RtpHeader, now: float, audio_level: bytes | None = None
    ) -> bytes | None:
        """A cached packet rewritten as it was first sent, without touching the forwarding state."""
        if h.ssrc != self.source or (h.sequence_number - self.segment_start) & 0xFFFF >= 0x8000:
            return None
        return self._write(data, h, now, audio_level)

    def source_sequence_number(self, sequence_number: int) -> int | None:
        """The publisher's sequence number of a packet this forwarder sent (e.g. in a NACK)."""
        if self.source is None:
            return None
        seq = (sequence_number - self.seq_delta) & 0xFFFF
        if (seq - self.segment_start) & 0xFFFF >= 0x8000:
            return None
        return seq

    def _rebase(self, h: RtpHeader, now: float) -> None:
        ts = self.last_ts
        if self.last_time is not None:
            ts += max(1, round((now - self.last_time) * self.clock_rate))
        self.seq_delta = (self.last_seq + 1 - h.sequence_number) & 0xFFFF
        self.ts_delta = (ts - h.timestamp) & 0xFFFFFFFF
        self.segment_start = h.sequence_number

    def _write(
        self, data: bytes, h: RtpHeader, now: float, audio_level: bytes | None
    ) -> bytes | None:
        pt = self.payload_types.get(h.payload_type)
        if pt is None:
            return None
        ext = self.extensions.block(audio_level, now)
        flags = (data[0] & 0x2F) | (0x10 if ext else 0)  # keep padding and CSRC count
        head = write_header(flags, h.marker, pt, (h.sequence_number + self.seq_delta) & 0xFFFF,
                            (h.timestamp + self.ts_delta) & 0xFFFFFFFF, self.ssrc)
        return b"".join((head, data[12 : h.csrc_end], ext, data[h.payload_offset :]))
