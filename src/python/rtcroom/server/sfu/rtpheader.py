"""RTP fixed header and header extensions (RFC 3550, RFC 8285) read from and written to bytes,
without building a packet object: the per-packet part of forwarding, free of asyncio and aiortc;
the parse, done for every packet the SFU receives, is native."""

from __future__ import annotations

import struct
from typing import NamedTuple

from rtcroom._native.forward import parse_header as _parse_header

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000

_fixed = struct.Struct("!BBHII")


class RtpHeader(NamedTuple):
    marker: int
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    csrc_end: int
    """Offset where the CSRC list ends (12 without CSRCs)."""
    payload_offset: int
    payload_end: int
    """Offset where trailing padding starts (len(data) without padding)."""
    extensions: dict[int, bytes]


_make = RtpHeader._make


def parse_header(data: bytes) -> RtpHeader:
    """Raises ValueError on anything that is not a well-formed RTP version 2 packet. Native
    (one call per packet); its plain-Python twin is tests/sfu_rtpheader_reference.py."""
    return _make(_parse_header(data))


def write_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """The header extension block (profile, length, elements, zero padding) for `elements`,
    one-byte form when every id and length allows it; b"" for no elements."""
    if not elements:
        return b""
    if all(0 < i < 15 and 0 < len(v) <= 16 for i, v in elements):
        profile = ONE_BYTE_PROFILE
        body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements)
    else:
        profile = TWO_BYTE_PROFILE
        body = b"".join(bytes([i, len(v)]) + v for i, v in elements)
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", profile, len(body) // 4) + body


def write_header(
    first_byte_flags: int, marker: int, payload_type: int, sequence_number: int,
    timestamp: int, ssrc: int,
) -> bytes:
    """The 12-byte fixed header; `first_byte_flags` carries padding, extension and CSRC count."""
    return _fixed.pack(0x80 | first_byte_flags, (marker << 7) | payload_type,
                       sequence_number, timestamp, ssrc)


def unwrap_rtx(data: bytes, h: RtpHeader, payload_type: int, ssrc: int) -> bytes:
    """The original packet carried by an RFC 4588 retransmission packet `data` (header `h`):
    its sequence number is the first two payload bytes; payload type and SSRC are the media's."""
    if h.payload_end - h.payload_offset < 2:
        raise ValueError("RTX packet without an original sequence number")
    seq = (data[h.payload_offset] << 8) | data[h.payload_offset + 1]
    head = write_header(data[0] & 0x3F, h.marker, payload_type, seq, h.timestamp, ssrc)
    return b"".join((head, data[12 : h.payload_offset], data[h.payload_offset + 2 :]))


def wrap_rtx(data: bytes, h: RtpHeader, payload_type: int, sequence_number: int,
             ssrc: int) -> bytes:
    """Packet `data` (header `h`) as an RFC 4588 retransmission on the RTX stream `ssrc`."""
    head = write_header(data[0] & 0x3F, h.marker, payload_type, sequence_number, h.timestamp,
                        ssrc)
    return b"".join((head, data[12 : h.payload_offset], h.sequence_number.to_bytes(2, "big"),
                     data[h.payload_offset :]))
