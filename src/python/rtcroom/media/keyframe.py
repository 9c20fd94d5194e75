"""Whether an RTP payload starts a keyframe, read from the payload format's own headers
(VP8: RFC 7741 payload descriptor and VP8 frame tag; VP9: RFC 9628 payload descriptor and the
VP9 uncompressed header; H.264: RFC 6184 NAL unit types)."""

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


def is_vp9_keyframe(data: bytes, start: int, end: int) -> bool:
    """True for the first packet of a VP9 key frame: the start (B) of a picture's first layer
    frame (spatial layer 0) that refers to no earlier picture (not P), whose uncompressed header
    says key frame. Either mode (flexible or not), with or without a scalability structure."""
    if end - start < 1:
        return False
    b = data[start]
    if b & 0x48 != 0x08:  # B set, P clear
        return False
    pos = start + 1
    if b & 0x80:  # I: picture id, 7 or 15 bits
        if pos >= end:
            return False
        pos += 2 if data[pos] & 0x80 else 1
    if b & 0x20:  # L: layer indices
        if pos >= end or data[pos] & 0x0E:  # SID: a higher spatial layer
            return False
        pos += 1 if b & 0x10 else 2  # TL0PICIDX in non-flexible mode
    # P clear: no reference differences even in flexible mode.
    if b & 0x02:  # V: scalability structure
        if pos >= end:
            return False
        ss = data[pos]
        pos += 1
        if ss & 0x10:  # Y: a width and height per spatial layer
            pos += 4 * ((ss >> 5) + 1)
        if ss & 0x08:  # G: the group of frames
            if pos >= end:
                return False
            pictures = data[pos]
            pos += 1
            for _ in range(pictures):
                if pos >= end:
                    return False
                pos += 1 + ((data[pos] >> 2) & 0x03)
    if pos >= end:
        return False
    # Uncompressed header: frame_marker (2 bits), profile (2), a reserved bit in profile 3,
    # show_existing_frame, frame_type (0: key frame).
    header = data[pos]
    if header >> 6 != 2:
        return False
    if header & 0x30 == 0x30:
        return not header & 0x06
    return not header & 0x0C


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
    "video/vp9": is_vp9_keyframe,
    "video/h264": is_h264_keyframe,
}
"""By lower-case MIME type; a codec without an entry cannot be gated on keyframes."""
