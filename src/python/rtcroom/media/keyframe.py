"""Whether an RTP payload starts a keyframe, read from the payload format's own headers
(VP8: RFC 7741 payload descriptor and VP8 frame tag; H.264: RFC 6184 NAL unit types)."""

from __future__ import annotations

from collections.abc import Callable

H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def is_vp8_keyframe(data: bytes, start: int, end: int) -> bool:
    """True for the first packet of a VP8 key frame."""
    if end - start < 1:
        return False
    b = data[start]
    # Only the start of partition 0 carries the frame tag.
    if not b & 0x10 or b & 0x0F:
        return False
    pos = start + 1
    if b & 0x80:  # X: extension byte follows
        if pos >= end:
            return False
        x = data[pos]
        pos += 1
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if pos >= end:
                return False
            pos += 2 if data[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    # VP8 frame tag: bit 0 (P) is 0 for a key frame.
    return pos < end and not data[pos] & 0x01


def is_h264_keyframe(data: bytes, start: int, end: int) -> bool:
    """True for a packet that starts an IDR picture or carries an SPS (which precedes one)."""
    if end - start < 1:
        return False
    nal_type = data[start] & 0x1F
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_STAP_A:
        pos = start + 1
        while pos + 2 < end:
            size = (data[pos] << 8) | data[pos + 1]
            if data[pos + 2] & 0x1F in (H264_IDR, H264_SPS):
                return True
            pos += 2 + size
        return False
    if nal_type == H264_FU_A and end - start >= 2:
        fu = data[start + 1]
        return bool(fu & 0x80) and fu & 0x1F in (H264_IDR, H264_SPS)
    return False


KeyframeTest = Callable[[bytes, int, int], bool]

KEYFRAME_TESTS: dict[str, KeyframeTest] = {
    "video/vp8": is_vp8_keyframe,
    "video/h264": is_h264_keyframe,
}
"""By lower-case MIME type; a codec without an entry cannot be gated on keyframes."""
