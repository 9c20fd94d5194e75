"""Plain-Python twin of the native RTP header parse behind
rtcroom.server.sfu.rtpheader.parse_header (rtcroom._native.forward.parse_header): the oracle of
its property tests."""

from __future__ import annotations

import struct

from rtcroom.server.sfu.rtpheader import (
    ONE_BYTE_PROFILE,
    TWO_BYTE_PROFILE,
    TWO_BYTE_PROFILE_MASK,
    RtpHeader,
)

_fixed = struct.Struct("!BBHII")


def parse_header(data: bytes) -> RtpHeader:
    """Raises ValueError on anything that is not a well-formed RTP version 2 packet."""
    if len(data) < 12:
        raise ValueError("RTP packet shorter than 12 bytes")
    b0, b1, seq, ts, ssrc = _fixed.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError("RTP version is not 2")
    pos = 12 + 4 * (b0 & 0x0F)
    if pos > len(data):
        raise ValueError("RTP CSRC list truncated")
    csrc_end = pos
    extensions: dict[int, bytes] = {}
    if b0 & 0x10:
        if len(data) < pos + 4:
            raise ValueError("RTP header extension truncated")
        profile = (data[pos] << 8) | data[pos + 1]
        end = pos + 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
        if len(data) < end:
            raise ValueError("RTP header extension truncated")
        if profile == ONE_BYTE_PROFILE:
            _one_byte_elements(data, pos + 4, end, extensions)
        elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
            _two_byte_elements(data, pos + 4, end, extensions)
        pos = end
    payload_end = len(data)
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or padding > payload_end - pos:
            raise ValueError("RTP padding length invalid")
        payload_end -= padding
    return RtpHeader(b1 >> 7, b1 & 0x7F, seq, ts, ssrc, csrc_end, pos, payload_end, extensions)


def _one_byte_elements(data: bytes, pos: int, end: int, out: dict[int, bytes]) -> None:
    while pos < end:
        b = data[pos]
        if b == 0:  # padding between elements
            pos += 1
            continue
        ext_id, length = b >> 4, (b & 0x0F) + 1
        if ext_id == 15:  # reserved: stop parsing (RFC 8285 section 4.2)
            return
        out[ext_id] = data[pos + 1 : pos + 1 + length]
        pos += 1 + length


def _two_byte_elements(data: bytes, pos: int, end: int, out: dict[int, bytes]) -> None:
    while pos + 1 < end:
        ext_id = data[pos]
        if ext_id == 0:
            pos += 1
            continue
        length = data[pos + 1]
        out[ext_id] = data[pos + 2 : pos + 2 + length]
        pos += 2 + length
