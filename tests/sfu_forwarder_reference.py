"""The plain-Python twin of the native forwarder (src/native/forward/): the oracle its property
tests compare against, rule for rule (rtcroom.server.sfu.forwarder documents the rules)."""

from __future__ import annotations

from rtcroom.server.sfu.forwarder import LegExtensions
from rtcroom.server.sfu.rtpheader import RtpHeader, parse_header, write_extensions, write_header

ABS_SEND_TIME_SCALE = 1 << 18
"""abs-send-time is seconds in 6.18 fixed point, 24 bits."""


def seq_newer(a: int, b: int) -> bool:
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def extension_block(ext: LegExtensions, audio_level: bytes | None, now: float) -> bytes:
    elements: list[tuple[int, bytes]] = []
    if ext.mid_id is not None and ext.mid:
        elements.append((ext.mid_id, ext.mid.encode()))
    if ext.audio_level_id is not None and audio_level is not None and len(audio_level) == 1:
        elements.append((ext.audio_level_id, audio_level))
    if ext.abs_send_time_id is not None:
        t = int(now * ABS_SEND_TIME_SCALE) & 0xFFFFFF
        elements.append((ext.abs_send_time_id, t.to_bytes(3, "big")))
    return write_extensions(elements)


def vp8_fields(data: bytes, start: int, end: int) -> tuple[int | None, bool, int | None]:
    """(offset of the picture id, whether it is 15 bits, offset of TL0PICIDX) of an RFC 7741
    payload descriptor; None where absent."""
    if end - start < 2 or not data[start] & 0x80:
        return None, False, None
    x, pos = data[start + 1], start + 2
    picture_id, long_id = None, False
    if x & 0x80:
        if pos >= end:
            return None, False, None
        long_id = bool(data[pos] & 0x80)
        if pos + (2 if long_id else 1) > end:
            return None, False, None
        picture_id = pos
        pos += 2 if long_id else 1
    tl0 = pos if x & 0x40 and pos < end else None
    return picture_id, long_id, tl0


def parse(data: bytes) -> RtpHeader | None:
    try:
        h = parse_header(data)
    except ValueError:
        return None
    return None if h.csrc_end > len(data) else h


class ReferenceForwarder:
    def __init__(
        self, *, ssrc: int, clock_rate: int, payload_types: dict[int, int],
        extensions: LegExtensions, wait_for_keyframe: bool, first_sequence_number: int,
        first_timestamp: int, vp8_payload_types: tuple[int, ...] = (),
    ) -> None:
        self.ssrc, self.clock_rate, self.payload_types = ssrc, clock_rate, payload_types
        self.extensions, self.wait_for_keyframe = extensions, wait_for_keyframe
        self.vp8_payload_types = set(vp8_payload_types)
        self.source: int | None = None
        self.target: int | None = None
        self.seq_delta = self.ts_delta = self.segment_start = 0
        self.last_seq = (first_sequence_number - 1) & 0xFFFF
        self.last_ts = first_timestamp
        self.last_time: float | None = None
        self.packets = self.octets = 0
        self.picture_id_delta = self.tl0_delta = 0
        self.vp8_rebase = False
        self.last_picture_id: int | None = None
        self.last_tl0: int | None = None
        self._written: tuple[int | None, int | None] = (None, None)

    @property
    def wants_keyframe(self) -> bool:
        return self.wait_for_keyframe and self.target is not None and self.target != self.source

    def select(self, ssrc: int | None) -> None:
        self.target = ssrc
        if ssrc is None:
            self.source = None

    def restart(self, ssrc: int) -> None:
        if self.source == ssrc:
            self.source = None

    def rewrite(self, data: bytes, keyframe: bool, now: float,
                audio_level: bytes | None = None) -> bytes | None:
        h = parse(data)
        if h is None:
            return None
        if h.ssrc != self.source:
            if h.ssrc != self.target or (self.wait_for_keyframe and not keyframe):
                return None
            self._rebase(h, now)
            self.source = h.ssrc
        elif (h.sequence_number - self.segment_start) & 0xFFFF >= 0x8000:
            return None
        out = self._write(data, h, now, audio_level, True)
        if out is None:
            return None
        seq = (h.sequence_number + self.seq_delta) & 0xFFFF
        if seq_newer(seq, self.last_seq):
            self.last_seq = seq
            self.last_ts = (h.timestamp + self.ts_delta) & 0xFFFFFFFF
            self.last_time = now
            picture_id, tl0 = self._written
            if picture_id is not None:
                self.last_picture_id = picture_id
            if tl0 is not None:
                self.last_tl0 = tl0
        self.packets += 1
        self.octets += h.payload_end - h.payload_offset
        return out

    def retransmission(self, data: bytes, now: float,
                       audio_level: bytes | None = None) -> bytes | None:
        h = parse(data)
        if (h is None or h.ssrc != self.source
                or (h.sequence_number - self.segment_start) & 0xFFFF >= 0x8000):
            return None
        return self._write(data, h, now, audio_level, False)

    def source_sequence_number(self, sequence_number: int) -> int | None:
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
        self.vp8_rebase = True

    def _write(self, data: bytes, h: RtpHeader, now: float, audio_level: bytes | None,
               forwarding: bool) -> bytes | None:
        pt = self.payload_types.get(h.payload_type)
        if pt is None:
            return None
        ext = extension_block(self.extensions, audio_level, now)
        flags = (data[0] & 0x2F) | (0x10 if ext else 0)
        head = write_header(flags, h.marker, pt, (h.sequence_number + self.seq_delta) & 0xFFFF,
                            (h.timestamp + self.ts_delta) & 0xFFFFFFFF, self.ssrc)
        payload = bytearray(data[h.payload_offset:])
        self._written = (None, None)
        if h.payload_type in self.vp8_payload_types:
            self._rewrite_vp8(data, h, payload, forwarding)
        return b"".join((head, data[12:h.csrc_end], ext, bytes(payload)))

    def _rewrite_vp8(self, data: bytes, h: RtpHeader, payload: bytearray,
                     forwarding: bool) -> None:
        at, long_id, tl0_at = vp8_fields(data, h.payload_offset, h.payload_end)
        if at is not None:
            pid = (((data[at] & 0x7F) << 8) | data[at + 1]) if long_id else data[at] & 0x7F
        if tl0_at is not None:
            tl0 = data[tl0_at]
        if forwarding and self.vp8_rebase:
            self.vp8_rebase = False
            self.picture_id_delta = self.tl0_delta = 0
            if at is not None and self.last_picture_id is not None:
                self.picture_id_delta = (self.last_picture_id + 1 - pid) & 0xFFFF
            if tl0_at is not None and self.last_tl0 is not None:
                self.tl0_delta = (self.last_tl0 + 1 - tl0) & 0xFF
        written_pid = written_tl0 = None
        if at is not None:
            i = at - h.payload_offset
            if long_id:
                written_pid = (pid + self.picture_id_delta) & 0x7FFF
                payload[i:i + 2] = (0x8000 | written_pid).to_bytes(2, "big")
            else:
                written_pid = (pid + self.picture_id_delta) & 0x7F
                payload[i] = written_pid
        if tl0_at is not None:
            written_tl0 = (tl0 + self.tl0_delta) & 0xFF
            payload[tl0_at - h.payload_offset] = written_tl0
        self._written = (written_pid, written_tl0)
