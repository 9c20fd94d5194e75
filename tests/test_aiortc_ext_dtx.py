"""rtcroom.aiortc_ext.dtx: which frames a DTX sender sends (silence detection, the hangover, the
400 ms keepalive), on synthetic frames; the encoder it makes of aiortc's Opus encoder; the
client's reading of ``dtx`` in the preferred codecs; and what it relies on in aiortc."""

from __future__ import annotations

import fractions
import inspect
import re

import av
import numpy as np
import pytest
from aiortc import RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from rtcroom.aiortc_ext.dtx import (
    HANGOVER,
    KEEPALIVE,
    SILENCE_LEVEL,
    DtxGate,
    OpusDtxEncoder,
    set_encoder_dtx,
    use_dtx,
)
from rtcroom.aiortc_ext.encoder import cap_bitrate, encoder_of
from rtcroom.client.codecs import opus_dtx
from rtcroom.options import ConnectOptions

RATE = 48000
FRAME = 960  # 20 ms


def _frame(samples: np.ndarray, index: int, rate: int = RATE) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), format="s16",
                                       layout="mono")
    frame.sample_rate = rate
    frame.pts = index * samples.size
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def _tone(n: int, index: int) -> np.ndarray:
    t = (index * n + np.arange(n)) / RATE
    return 8000 * np.sin(2 * np.pi * 440 * t)


def _quiet(rng: np.random.Generator, n: int, peak: int) -> np.ndarray:
    """Noise whose largest sample is ``peak``."""
    samples = rng.integers(-peak, peak + 1, n)
    samples[0] = peak
    return samples


# --- the decision -------------------------------------------------------------------------------


def test_silence_is_sent_for_the_hangover_then_once_per_keepalive_and_speech_at_once() -> None:
    gate = DtxGate()
    hangover, keepalive = HANGOVER // FRAME, KEEPALIVE // FRAME  # in 20 ms frames
    script = [SILENCE_LEVEL * 50] * 25 + [SILENCE_LEVEL - 1] * 150 + [SILENCE_LEVEL] * 5
    sent = [i for i, level in enumerate(script) if gate.send(level, FRAME)]

    speech = [i for i, level in enumerate(script) if level >= SILENCE_LEVEL]
    assert set(speech) <= set(sent)
    silence = [i - 25 for i in sent if script[i] < SILENCE_LEVEL]
    # The first `hangover` silent frames, then one frame every `keepalive` after the last of them.
    assert silence[:hangover] == list(range(hangover))
    keepalives = silence[hangover:]
    assert keepalives == list(range(hangover - 1 + keepalive, 150, keepalive))
    assert len(keepalives) == (150 - hangover) // keepalive
    # A frame at the threshold is speech: sent, and the next silence starts a new hangover.
    assert gate.transmitting and gate.silent == 0
    assert all(gate.send(0, FRAME) for _ in range(hangover))
    assert not gate.send(0, FRAME)


def test_durations_count_samples_not_frames() -> None:
    """Frames of 10 ms and of 60 ms reach the keepalive after the same stretch of silence."""
    for frame in (480, 2880):
        gate = DtxGate()
        seconds = 4.0
        count = int(seconds * RATE) // frame
        sent = [i for i in range(count) if gate.send(0, frame)]
        after_hangover = [i * frame for i in sent if i * frame >= HANGOVER]
        gaps = np.diff(after_hangover)
        assert len(gaps) > 0 and all(KEEPALIVE <= g < KEEPALIVE + frame for g in gaps)


# --- the encoder --------------------------------------------------------------------------------


def test_the_dtx_encoder_drops_quiet_packets_keeps_timestamps_and_resumes_at_once() -> None:
    rng = np.random.default_rng(1)
    encoder = OpusEncoder()
    set_encoder_dtx(encoder, True)
    assert isinstance(encoder, OpusDtxEncoder)
    plain = OpusEncoder()
    script = (["tone"] * 20 + ["quiet"] * 60 + ["zero"] * 40 + ["tone"] * 10)
    sent: list[tuple[int, str, int]] = []
    for i, kind in enumerate(script):
        samples = {"tone": lambda: _tone(FRAME, i),
                   "quiet": lambda: _quiet(rng, FRAME, SILENCE_LEVEL - 1),
                   "zero": lambda: np.zeros(FRAME)}[kind]()
        payloads, timestamp = encoder.encode(_frame(samples, i))
        # The same frame through aiortc's own encoder: the packets kept are its packets.
        expected, expected_timestamp = plain.encode(_frame(samples, i))
        if payloads:
            assert (payloads, timestamp) == (expected, expected_timestamp)
            sent.append((i, kind, timestamp))
        else:
            assert timestamp is None and expected
    quiet = [i for i, kind, _ in sent if kind != "tone"]
    tone = [i for i, kind, _ in sent if kind == "tone"]
    assert tone == [i for i, kind in enumerate(script) if kind == "tone"]
    # 100 silent frames: 10 of hangover, then one per 20 frames.
    assert quiet == list(range(20, 30)) + list(range(49, 120, 20))
    # The encoder's clock ran through the silence: each packet is timestamped for its frame.
    assert all(ts - sent[0][2] == (i - sent[0][0]) * FRAME for i, _, ts in sent)
    set_encoder_dtx(encoder, False)
    assert type(encoder) is OpusEncoder
    assert encoder.encode(_frame(np.zeros(FRAME), len(script)))[0]


def test_audio_just_above_the_threshold_is_always_sent() -> None:
    rng = np.random.default_rng(2)
    encoder = OpusEncoder()
    set_encoder_dtx(encoder, True)
    assert all(encoder.encode(_frame(_quiet(rng, FRAME, SILENCE_LEVEL), i))[0]
               for i in range(100))


def test_resampled_input_keeps_the_keepalive_in_time() -> None:
    """16 kHz frames of 20 ms: 4 s of silence give the hangover and one packet per 400 ms."""
    encoder = OpusEncoder()
    set_encoder_dtx(encoder, True)
    timestamps = []
    for i in range(200):
        payloads, timestamp = encoder.encode(_frame(np.zeros(320), i, rate=16000))
        if payloads:
            timestamps.append(timestamp)
    steps = np.diff(timestamps)
    assert list(steps[: HANGOVER // FRAME - 2]) == [FRAME] * (HANGOVER // FRAME - 2)
    dtx_steps = steps[steps > FRAME]
    assert len(dtx_steps) >= (4 * RATE - HANGOVER) // KEEPALIVE - 1
    assert all(KEEPALIVE <= s <= KEEPALIVE + FRAME for s in dtx_steps)


# --- on a sender, from the connect options -------------------------------------------------------


class Silence(MediaStreamTrack):
    """20 ms frames of digital silence at 48 kHz, as fast as they are asked for."""

    kind = "audio"
    index = 0

    async def recv(self) -> av.AudioFrame:
        self.index += 1
        return _frame(np.zeros(FRAME), self.index - 1)


def _sender(kind: str) -> RTCRtpSender:
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()),
                                 [RTCCertificate.generateCertificate()])
    return RTCRtpSender(kind, transport)


def _codec(kind: str, mime_type: str) -> RTCRtpCodecParameters:
    [codec] = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime_type]
    return RTCRtpCodecParameters(mimeType=codec.mimeType, clockRate=codec.clockRate,
                                 channels=codec.channels, payloadType=111)


async def test_dtx_and_a_cap_set_before_the_first_frame_apply_to_the_encoder_it_creates() -> None:
    sender = _sender("audio")
    use_dtx(sender, True)
    cap_bitrate(sender, 16_000)
    sender.replaceTrack(Silence())
    codec = _codec("audio", "audio/opus")
    # The track's first frame is silence: it is in the hangover, so it is sent.
    assert await sender._next_encoded_frame(codec) is not None
    encoder = encoder_of(sender)
    assert isinstance(encoder, OpusDtxEncoder) and encoder.codec.bit_rate == 16_000
    use_dtx(sender, False)
    assert type(encoder_of(sender)) is OpusEncoder


async def test_what_dtx_relies_on_is_still_in_aiortc() -> None:
    # A frame the encoder gives no packets for is no RTP packet: _next_encoded_frame returns
    # None for it, and the RTP loop goes on to the next frame without using a sequence number.
    sender = _sender("audio")
    use_dtx(sender, True)
    sender.replaceTrack(Silence())
    codec = _codec("audio", "audio/opus")
    frames = [await sender._next_encoded_frame(codec) for _ in range(HANGOVER // FRAME + 3)]
    assert all(f is not None for f in frames[: HANGOVER // FRAME])
    assert frames[-1] is None
    source = inspect.getsource(RTCRtpSender._run_rtp)
    assert re.search(r"enc_frame = await self\._next_encoded_frame\(codec\)\s+"
                     r"if enc_frame is None:\s+continue", source)
    assert source.index("sequence_number = uint16_add") > source.index("for i, payload in")
    # OpusEncoder's own empty answer (a frame the resampler keeps for the next one).
    assert OpusEncoder().encode(_frame(np.zeros(480), 0)) == ([], None)


def test_use_dtx_leaves_other_codecs_alone() -> None:
    encoder = Vp8Encoder()
    set_encoder_dtx(encoder, True)
    assert type(encoder) is Vp8Encoder


@pytest.mark.parametrize(("preferred", "dtx"), [
    ((), True),  # twilio-video.js's default
    (("opus",), True),
    (({"codec": "opus", "dtx": True},), True),
    (({"codec": "opus", "dtx": False},), False),
    (("PCMU", {"codec": "opus", "dtx": False}), False),
    (("PCMU",), True),  # no Opus preferred: Opus, if sent, has its default
    (({"codec": "opus", "dtx": False}, "opus"), True),
])
def test_dtx_is_read_from_the_preferred_audio_codecs(preferred: tuple, dtx: bool) -> None:
    assert opus_dtx(ConnectOptions.from_dict({"preferred_audio_codecs": list(preferred)})) is dtx
