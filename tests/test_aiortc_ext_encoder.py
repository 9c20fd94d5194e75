"""rtcroom.aiortc_ext.encoder: a cap on a sender's encoder holds (VP8, H.264, Opus), against
REMB too, and can change while encoding; and what it relies on in aiortc is still there."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc import RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import VideoStreamTrack
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from rtcroom.aiortc_ext import encoder as capping
from rtcroom.aiortc_ext.encoder import cap_bitrate, cap_encoder, encoder_of
from rtcroom.aiortc_ext.vp9 import Vp9Encoder

FPS = 30


def _sender(kind: str) -> RTCRtpSender:
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()),
                                 [RTCCertificate.generateCertificate()])
    return RTCRtpSender(kind, transport)


async def test_what_the_cap_relies_on_is_still_in_aiortc() -> None:
    sender = _sender("video")
    assert encoder_of(sender) is None  # the private slot exists, empty before the first frame
    assert callable(RTCRtpSender._next_encoded_frame)
    assert getattr(RTCRtpSender._next_encoded_frame, "_rtcroom_configured_frames", False)
    for cls, slot in ((Vp8Encoder, "_Vp8Encoder__target_bitrate"),
                      (H264Encoder, "_H264Encoder__target_bitrate"),
                      (Vp9Encoder, "_Vp9Encoder__target_bitrate")):
        encoder = cls()
        assert isinstance(cls.__dict__["target_bitrate"], property)
        assert getattr(encoder, slot) == encoder.target_bitrate
    assert OpusEncoder().codec.bit_rate == 96000


def _video_bitrate(encoder, frames: int = 2 * FPS, width: int = 320, height: int = 240) -> float:
    """Bits/s the encoder spends on a gradient under light noise: enough detail to use a 500 kbps
    budget at 320x240 (pure noise overshoots any budget at the encoders' highest quantizer)."""
    rng = np.random.default_rng(3)
    gradient = np.linspace(0, 200, width)[None, :, None].repeat(height, 0).repeat(3, 2)
    size = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(
            np.clip(gradient + rng.normal(0, 10, gradient.shape), 0, 255).astype(np.uint8),
            "rgb24")
        frame.pts, frame.time_base = i, fractions.Fraction(1, FPS)
        payloads, _ = encoder.encode(frame)
        if i >= FPS // 2:  # after the keyframe and the rate control's start
            size += sum(len(p) for p in payloads)
    return size * 8 / ((frames - FPS // 2) / FPS)


def _audio_bitrate(encoder, seconds: float = 2.0) -> float:
    rng = np.random.default_rng(5)
    size, n = 0, 960
    frames = int(seconds * 50)
    for i in range(frames):
        pcm = (rng.standard_normal(n) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, i * n
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, _ = encoder.encode(frame)
        if i >= 10:
            size += sum(len(p) for p in payloads)
    return size * 8 / ((frames - 10) / 50)


@pytest.mark.parametrize("cls", [Vp8Encoder, H264Encoder, Vp9Encoder])
def test_a_video_cap_holds_against_remb_and_lifts(cls) -> None:
    encoder = cls()
    uncapped = _video_bitrate(encoder)
    cap_encoder(encoder, 150_000)  # below aiortc's own lower clamp
    capped = _video_bitrate(encoder)
    encoder.target_bitrate = 2_000_000  # a REMB asking for more
    after_remb = _video_bitrate(encoder)
    assert encoder.target_bitrate == 150_000
    cap_encoder(encoder, None)
    lifted = _video_bitrate(encoder)
    print(f"\n{cls.__name__} bits/s: uncapped {uncapped:.0f}, capped at 150k {capped:.0f}, "
          f"after REMB 2M {after_remb:.0f}, cap lifted {lifted:.0f}")
    assert capped < 0.5 * uncapped and capped < 1.5 * 150_000
    assert after_remb < 1.5 * 150_000
    assert lifted > 2 * capped  # back to what the REMB asked, within aiortc's clamp


def test_an_opus_cap_holds_and_changes_while_encoding() -> None:
    encoder = OpusEncoder()
    uncapped = _audio_bitrate(encoder)
    cap_encoder(encoder, 16_000)
    capped = _audio_bitrate(encoder)
    cap_encoder(encoder, None)
    lifted = _audio_bitrate(encoder)
    print(f"\nopus bits/s: uncapped {uncapped:.0f}, capped at 16k {capped:.0f}, "
          f"lifted {lifted:.0f}")
    assert capped < 1.3 * 16_000 < uncapped
    assert lifted > 2 * capped


@pytest.mark.parametrize(("mime_type", "cls"), [("video/VP8", Vp8Encoder),
                                               ("video/VP9", Vp9Encoder)])
async def test_a_cap_set_before_the_first_frame_applies_to_the_encoder_it_creates(
        mime_type: str, cls: type) -> None:
    sender = _sender("video")
    cap_bitrate(sender, 100_000)
    [codec] = [c for c in RTCRtpSender.getCapabilities("video").codecs
               if c.mimeType == mime_type]
    sender.replaceTrack(VideoStreamTrack())
    await sender._next_encoded_frame(RTCRtpCodecParameters(
        mimeType=codec.mimeType, clockRate=codec.clockRate, payloadType=96))
    encoder = encoder_of(sender)
    assert isinstance(encoder, cls) and encoder.target_bitrate == 100_000
    assert capping.encoder_of(sender) is encoder
