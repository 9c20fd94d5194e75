"""VP9 for aiortc, which (1.16) has only VP8 and H.264 for video: a codec entry, encoder,
RTP payloader and depayloader (RFC 9628) and decoder, registered on import where PyAV has
libvpx-vp9 (its wheels do).

A participant that prefers VP9 (``preferred_video_codecs=["VP9"]``) then offers it first and
sends it; one that does not still offers it after VP8 and H.264, so aiortc's default stays VP8.
The SFU's connections are aiortc too: with VP9 registered they negotiate it and forward it as
received (:data:`rtcroom.media.keyframe.KEYFRAME_TESTS` has its keyframe test, which gates a
leg's start). The SFU selects no VP9 layers: a stream with several spatial layers in one SSRC
(SVC, as Chromium sends with ``scalabilityMode`` L2T1) is forwarded whole, and a Python
subscriber decodes the top layer (tests/browser/test_browser_vp9.py). Chromium's own single
layer VP9 is in flexible mode, without layer indices; the depayloader and the keyframe test
read both modes.

- Codec: ``video/VP9``, 90 kHz, ``profile-id=0`` (the profile browsers offer first and the
  one libvpx encodes from 8-bit 4:2:0), with RTX and the RTCP feedback of aiortc's own VP8
  entry. Two VP9 entries match only with the same profile (absent means 0, RFC 9628
  section 6): aiortc compares VP9 by name and clock rate only, and would answer Chromium's
  profile 2 with profile 0's parameters.
- Encoder: PyAV's ``libvpx-vp9``, real-time (``deadline=realtime``, ``cpu-used=8``, no lag,
  error resilient, cyclic refresh), constant bitrate at ``target_bitrate``, clamped and
  rebuilt on a change of more than 10 % as aiortc's VP8 encoder does (REMB sets it;
  :mod:`.encoder` caps it); a requested keyframe is forced with the frame's picture type.
- Payload: non-flexible mode, one spatial and one temporal layer, as libwebrtc sends a single
  stream: every packet has a 15-bit picture id, the layer indices and TL0PICIDX (libwebrtc
  drops non-flexible packets without it), B/E on a frame's first and last packet; the first
  packet of a keyframe carries the scalability structure (resolution and a one-picture group
  of frames referring to the previous picture), which libwebrtc's receiver needs before it
  can relate later frames.
- Decoder: PyAV's ``libvpx-vp9``, which decodes several frames handed over in one buffer
  (a browser's spatial layers, reassembled into one picture by aiortc's jitter buffer).

aiortc internals this relies on (checked by tests/test_aiortc_ext_vp9.py, so an upgrade that
moves one fails there first):

- ``aiortc.codecs.CODECS["video"]``, the list of ``RTCRtpCodecParameters`` every offer and
  answer takes its codecs from (``aiortc.rtcpeerconnection`` holds the same dict), numbered
  from 97 by ``init_codecs`` in pairs of a codec and its RTX;
- the module-level names ``get_encoder`` in ``aiortc.rtcrtpsender``, ``get_decoder`` and
  ``depayload`` in ``aiortc.rtcrtpreceiver`` (the receiver's decoder thread and receive path
  look them up at call time), and ``is_codec_compatible`` in ``aiortc.rtcpeerconnection``
  (``find_common_codecs`` calls it for every pair of codecs): each is wrapped to handle VP9
  and defer to aiortc's for the rest (the three factories in ``aiortc.codecs`` too, for code
  that imports them from there later);
- the ``Encoder`` / ``Decoder`` base classes and ``JitterFrame`` (``data``, ``timestamp``),
  ``aiortc.mediastreams.VIDEO_TIME_BASE`` / ``convert_timebase``, and
  ``aiortc.codecs.vpx.number_of_threads`` (the VP8 encoder's thread count, used alike).
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import random
from collections.abc import Callable
from typing import Any, cast

import aiortc.codecs
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.vpx import number_of_threads
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext

__all__ = [
    "MIME_TYPE", "GroupPicture", "ScalabilityStructure", "Vp9Decoder", "Vp9Encoder",
    "Vp9PayloadDescriptor", "install", "keyframe_size", "libvpx_vp9", "vp9_depayload",
    "vp9_packetize",
]

MIME_TYPE = "video/VP9"
PARAMETERS = {"profile-id": "0"}

DEFAULT_BITRATE = 500_000
MIN_BITRATE = 250_000
MAX_BITRATE = 1_500_000
"""bits/s: aiortc's VP8 start and clamps, so a VP9 sender starts and reacts to REMB alike."""

PACKET_MAX = 1300
"""Bytes of payload (descriptor included) per RTP packet, aiortc's VP8 packet size."""

_PATCHED = "_rtcroom_vp9"


@dataclasses.dataclass(frozen=True)
class GroupPicture:
    """One picture of the scalability structure's group of frames (RFC 9628 4.2.1)."""

    tid: int
    """Temporal layer index, 0-7."""
    switching_up: bool
    """U: a switch up to a higher temporal layer is possible at this picture."""
    p_diffs: tuple[int, ...]
    """Picture id differences of its references, 1-255 each, at most 3."""


@dataclasses.dataclass(frozen=True)
class ScalabilityStructure:
    """SS (RFC 9628 4.2.1): the resolution of each spatial layer (Y) and the group of frames
    (G) a non-flexible stream follows."""

    spatial_layers: int = 1
    """N_S + 1, 1-8."""
    resolutions: tuple[tuple[int, int], ...] | None = None
    """(width, height) per spatial layer, when present (Y)."""
    group: tuple[GroupPicture, ...] | None = None
    """The group of frames, when present (G); it may be empty."""

    def __bytes__(self) -> bytes:
        if not 1 <= self.spatial_layers <= 8:
            raise ValueError("VP9 SS: 1 to 8 spatial layers")
        if self.resolutions is not None and len(self.resolutions) != self.spatial_layers:
            raise ValueError("VP9 SS: one resolution per spatial layer")
        out = bytearray([((self.spatial_layers - 1) << 5) | (self.resolutions is not None) << 4
                         | (self.group is not None) << 3])
        for width, height in self.resolutions or ():
            out += width.to_bytes(2, "big") + height.to_bytes(2, "big")
        if self.group is not None:
            out.append(len(self.group))
            for picture in self.group:
                out.append((picture.tid << 5) | (picture.switching_up << 4)
                           | (len(picture.p_diffs) << 2))
                out += bytes(picture.p_diffs)
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes, pos: int) -> tuple[ScalabilityStructure, int]:
        """The structure at ``data[pos:]`` and the position after it."""
        try:
            head = data[pos]
            pos += 1
            spatial_layers = (head >> 5) + 1
            resolutions = None
            if head & 0x10:
                resolutions = tuple(
                    (int.from_bytes(data[p:p + 2], "big"), int.from_bytes(data[p + 2:p + 4], "big"))
                    for p in range(pos, pos + 4 * spatial_layers, 4))
                pos += 4 * spatial_layers
                if pos > len(data):
                    raise IndexError
            group = None
            if head & 0x08:
                pictures = []
                for _ in range(data[pos]):
                    pos += 1
                    picture = data[pos]
                    refs = (picture >> 2) & 0x03
                    p_diffs = tuple(data[pos + 1:pos + 1 + refs])
                    if len(p_diffs) != refs:
                        raise IndexError
                    pictures.append(GroupPicture(picture >> 5, bool(picture & 0x10), p_diffs))
                    pos += refs
                pos += 1
                group = tuple(pictures)
        except IndexError:
            raise ValueError("VP9 descriptor has a truncated scalability structure") from None
        return cls(spatial_layers, resolutions, group), pos


@dataclasses.dataclass
class Vp9PayloadDescriptor:
    """The VP9 payload descriptor (RFC 9628 4.2), in either mode: flexible (F, reference
    picture id differences in each packet) or not (TL0PICIDX, and the group of frames of the
    scalability structure)."""

    start_of_frame: bool = False
    """B: the first packet of a layer frame."""
    end_of_frame: bool = False
    """E: the last packet of a layer frame."""
    inter_picture_predicted: bool = False
    """P: the frame refers to earlier pictures (False on a keyframe's)."""
    flexible: bool = False
    """F: flexible mode."""
    not_reference_for_upper: bool = False
    """Z: not used for inter-layer prediction by the next spatial layer."""
    picture_id: int | None = None
    """I: 7 or 15 bits (M: ``long_picture_id``)."""
    long_picture_id: bool = True
    tid: int | None = None
    """L: temporal layer index, with ``switching_up``, ``sid`` and ``inter_layer_dependency``
    (all None without L)."""
    switching_up: bool = False
    sid: int = 0
    inter_layer_dependency: bool = False
    """D: the frame depends on the spatial layer below."""
    tl0picidx: int | None = None
    """Non-flexible mode with L: index of the last temporal base layer picture."""
    p_diffs: tuple[int, ...] = ()
    """Flexible mode, P: picture id differences of the references, 1-127 each, at most 3."""
    scalability: ScalabilityStructure | None = None
    """V: the scalability structure."""

    def __bytes__(self) -> bytes:
        layers = self.tid is not None
        if layers and not self.flexible and self.tl0picidx is None:
            raise ValueError("VP9 descriptor: non-flexible mode with layer indices needs "
                             "TL0PICIDX")
        if self.p_diffs and not (self.flexible and self.inter_picture_predicted):
            raise ValueError("VP9 descriptor: reference differences need flexible mode and P")
        out = bytearray([(self.picture_id is not None) << 7 | self.inter_picture_predicted << 6
                         | layers << 5 | self.flexible << 4 | self.start_of_frame << 3
                         | self.end_of_frame << 2 | (self.scalability is not None) << 1
                         | self.not_reference_for_upper])
        if self.picture_id is not None:
            if self.long_picture_id:
                out += (0x8000 | self.picture_id).to_bytes(2, "big")
            else:
                out.append(self.picture_id)
        if self.tid is not None:
            out.append((self.tid << 5) | self.switching_up << 4 | (self.sid << 1)
                       | self.inter_layer_dependency)
            if not self.flexible:
                assert self.tl0picidx is not None
                out.append(self.tl0picidx)
        for i, diff in enumerate(self.p_diffs):
            out.append((diff << 1) | (i < len(self.p_diffs) - 1))
        if self.scalability is not None:
            out += bytes(self.scalability)
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes) -> tuple[Vp9PayloadDescriptor, bytes]:
        """The descriptor at the start of an RTP payload, and the VP9 data after it."""
        if not data:
            raise ValueError("VP9 descriptor is too short")
        head = data[0]
        d = cls(start_of_frame=bool(head & 0x08), end_of_frame=bool(head & 0x04),
                inter_picture_predicted=bool(head & 0x40), flexible=bool(head & 0x10),
                not_reference_for_upper=bool(head & 0x01))
        pos = 1
        try:
            if head & 0x80:
                d.long_picture_id = bool(data[pos] & 0x80)
                if d.long_picture_id:
                    d.picture_id = ((data[pos] & 0x7F) << 8) | data[pos + 1]
                    pos += 2
                else:
                    d.picture_id = data[pos]
                    pos += 1
            if head & 0x20:
                layer = data[pos]
                d.tid, d.switching_up = layer >> 5, bool(layer & 0x10)
                d.sid, d.inter_layer_dependency = (layer >> 1) & 0x07, bool(layer & 0x01)
                pos += 1
                if not d.flexible:
                    d.tl0picidx = data[pos]
                    pos += 1
            if d.flexible and d.inter_picture_predicted:
                diffs = []
                while True:
                    diffs.append(data[pos] >> 1)
                    pos += 1
                    if not data[pos - 1] & 0x01:
                        break
                    if len(diffs) == 3:
                        raise ValueError("VP9 descriptor has more than 3 reference differences")
                d.p_diffs = tuple(diffs)
        except IndexError:
            raise ValueError("VP9 descriptor is truncated") from None
        if head & 0x02:
            d.scalability, pos = ScalabilityStructure.parse(data, pos)
        return d, data[pos:]


def vp9_depayload(payload: bytes) -> bytes:
    """The VP9 data of one RTP payload."""
    return Vp9PayloadDescriptor.parse(payload)[1]


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) when ``frame`` (VP9 data, possibly a superframe) starts with a keyframe,
    from its uncompressed header (VP9 bitstream specification 6.2); None otherwise."""
    bits = int.from_bytes(frame[:16], "big")
    total = 8 * min(len(frame), 16)
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        pos += n
        if pos > total:
            raise ValueError("truncated")
        return (bits >> (total - pos)) & ((1 << n) - 1)

    try:
        if read(2) != 2:  # frame_marker
            return None
        profile = read(1) | (read(1) << 1)
        if profile == 3:
            read(1)
        if read(1) or read(1):  # show_existing_frame, frame_type (1: not a keyframe)
            return None
        read(2)  # show_frame, error_resilient_mode
        if read(24) != 0x498342:  # sync code
            return None
        if profile >= 2:
            read(1)  # ten_or_twelve_bit
        if read(3) != 7:  # color_space other than RGB
            read(1)  # color_range
            if profile in (1, 3):
                read(3)  # subsampling_x, subsampling_y, reserved
        elif profile in (1, 3):
            read(1)
        return read(16) + 1, read(16) + 1
    except ValueError:
        return None


def vp9_packetize(frame: bytes, picture_id: int, tl0picidx: int) -> list[bytes]:
    """RTP payloads of one VP9 picture of a single-layer stream, in non-flexible mode."""
    size = keyframe_size(frame)
    descriptor = Vp9PayloadDescriptor(
        start_of_frame=True, inter_picture_predicted=size is None, picture_id=picture_id,
        tid=0, tl0picidx=tl0picidx,
        scalability=None if size is None else ScalabilityStructure(
            # VP9 sizes go to 65536, one more than the 16 bits SS has for them.
            resolutions=(size,) if max(size) <= 0xFFFF else None,
            group=(GroupPicture(0, False, (1,)),)))
    payloads = []
    pos = 0
    while True:
        chunk = frame[pos:pos + PACKET_MAX - len(bytes(descriptor))]
        pos += len(chunk)
        descriptor.end_of_frame = pos >= len(frame)
        payloads.append(bytes(descriptor) + chunk)
        if descriptor.end_of_frame:
            return payloads
        descriptor.start_of_frame = False
        descriptor.scalability = None


class Vp9Decoder(Decoder):
    def __init__(self) -> None:
        self.codec = av.CodecContext.create("libvpx-vp9", "r")

    def decode(self, encoded_frame: JitterFrame) -> list[Frame]:
        packet = Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = VIDEO_TIME_BASE
        return cast(list[Frame], self.codec.decode(packet))


class Vp9Encoder(Encoder):
    """libvpx-vp9 in real time, packetized for RTP; ``target_bitrate`` as aiortc's VP8."""

    def __init__(self) -> None:
        self.codec: VideoCodecContext | None = None
        self.picture_id = random.randrange(1 << 15)
        self.tl0picidx = random.randrange(1 << 8)
        self.__target_bitrate = DEFAULT_BITRATE
        self._bitrate = DEFAULT_BITRATE
        """The bitrate the open codec context was given."""

    @property
    def target_bitrate(self) -> int:
        """Target bitrate in bits per second."""
        return self.__target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.__target_bitrate = max(MIN_BITRATE, min(bitrate, MAX_BITRATE))

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame)
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        codec = self.codec
        if codec is not None and (
                frame.width != codec.width or frame.height != codec.height
                or abs(self.target_bitrate - self._bitrate) > 0.1 * self._bitrate):
            codec = None
        if force_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        if codec is None:
            codec = self.codec = self._open(frame.width, frame.height)
        # Before encoding: PyAV rebases the frame it encodes to the context's microseconds.
        timestamp = _rtp_timestamp(frame)
        data = b"".join(bytes(p) for p in codec.encode(frame))
        return self._packetize(data), timestamp

    def pack(self, packet: Packet) -> tuple[list[bytes], int]:
        return self._packetize(bytes(packet)), _rtp_timestamp(packet)

    def _packetize(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        payloads = vp9_packetize(data, self.picture_id, self.tl0picidx)
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        # Every picture is a temporal base layer picture.
        self.tl0picidx = (self.tl0picidx + 1) % (1 << 8)
        return payloads

    def _open(self, width: int, height: int) -> VideoCodecContext:
        codec = cast(VideoCodecContext, av.CodecContext.create("libvpx-vp9", "w"))
        codec.width = width
        codec.height = height
        codec.bit_rate = bitrate = self._bitrate = self.target_bitrate
        codec.pix_fmt = "yuv420p"
        codec.gop_size = 3000  # keyframes when asked for
        codec.qmin = 2
        codec.qmax = 56
        codec.options = {
            "bufsize": str(bitrate),  # a one-second buffer, as aiortc's VP8
            "cpu-used": "8",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "error-resilient": "1",
            "aq-mode": "3",  # cyclic refresh, libwebrtc's real-time setting
            "row-mt": "1",
            "minrate": str(bitrate),  # = maxrate = bit_rate: constant bitrate
            "maxrate": str(bitrate),
            "overshoot-pct": "15",
            "undershoot-pct": "100",
            "static-thresh": "1",
        }
        codec.thread_count = number_of_threads(width * height, multiprocessing.cpu_count())
        return codec


def _rtp_timestamp(media: Frame | Packet) -> int:
    if media.pts is None or media.time_base is None:
        raise ValueError("VP9 encoder: a frame or packet needs pts and time_base")
    return convert_timebase(media.pts, media.time_base, VIDEO_TIME_BASE)


def _codec_entry(codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """VP9 and its RTX, numbered after the highest payload type in ``codecs``, with the RTCP
    feedback of the VP8 entry."""
    vp8 = next(c for c in codecs if c.mimeType.lower() == "video/vp8")
    payload_type = max(c.payloadType for c in codecs if c.payloadType is not None) + 1
    return [
        RTCRtpCodecParameters(mimeType=MIME_TYPE, clockRate=90000, payloadType=payload_type,
                              rtcpFeedback=list(vp8.rtcpFeedback), parameters=dict(PARAMETERS)),
        RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000,
                              payloadType=payload_type + 1, parameters={"apt": payload_type}),
    ]


def _is_vp9(codec: Any) -> bool:
    return str(codec.mimeType).lower() == "video/vp9"


def _profile(codec: Any) -> str:
    return str(codec.parameters.get("profile-id", "0"))


def libvpx_vp9() -> bool:
    """Whether PyAV's FFmpeg has libvpx's VP9 encoder and decoder (PyAV's wheels do)."""
    try:
        av.Codec("libvpx-vp9", "w")
        av.Codec("libvpx-vp9", "r")
    except av.codec.codec.UnknownCodecError:
        return False
    return True


def install() -> None:
    """Register VP9 with aiortc (idempotent); not where PyAV lacks libvpx-vp9, so that VP9 is
    never offered without an encoder and decoder behind it."""
    compatible: Callable[..., bool] = aiortc.rtcpeerconnection.is_codec_compatible
    if getattr(compatible, _PATCHED, False) or not libvpx_vp9():
        return
    video = aiortc.codecs.CODECS["video"]
    video += _codec_entry(video)
    get_encoder = aiortc.rtcrtpsender.get_encoder
    get_decoder = aiortc.rtcrtpreceiver.get_decoder
    depayload = aiortc.rtcrtpreceiver.depayload

    @functools.wraps(get_encoder)
    def get_vp9_encoder(codec: RTCRtpCodecParameters) -> Encoder:
        return Vp9Encoder() if _is_vp9(codec) else get_encoder(codec)

    @functools.wraps(get_decoder)
    def get_vp9_decoder(codec: RTCRtpCodecParameters) -> Decoder:
        return Vp9Decoder() if _is_vp9(codec) else get_decoder(codec)

    @functools.wraps(depayload)
    def vp9_or_other_depayload(codec: RTCRtpCodecParameters, payload: bytes) -> bytes:
        return vp9_depayload(payload) if _is_vp9(codec) else depayload(codec, payload)

    @functools.wraps(compatible)
    def is_codec_compatible(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
        return compatible(a, b) and not (_is_vp9(a) and _profile(a) != _profile(b))

    setattr(is_codec_compatible, _PATCHED, True)
    for module in (aiortc.codecs, aiortc.rtcrtpsender):
        module.get_encoder = get_vp9_encoder  # type: ignore[attr-defined]
    for module in (aiortc.codecs, aiortc.rtcrtpreceiver):
        module.get_decoder = get_vp9_decoder  # type: ignore[attr-defined]
        module.depayload = vp9_or_other_depayload  # type: ignore[attr-defined]
    aiortc.rtcpeerconnection.is_codec_compatible = is_codec_compatible


install()
