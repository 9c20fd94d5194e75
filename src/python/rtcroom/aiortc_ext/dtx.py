"""Opus DTX (discontinuous transmission) for an aiortc sender: no packets during silence.

FFmpeg's libopus encoder, which aiortc uses, offers no DTX switch that works (``dtx=1`` in its
options changes nothing: a packet still comes for every 20 ms of silence), so the gating is done
here, as libopus's own DTX does it: after a hangover of silent audio still sent
(:data:`HANGOVER`, so a word's decaying end is not cut), the encoder's packets are dropped,
except one every :data:`KEEPALIVE` (the update that keeps a receiver's comfort noise going); the
first frame that is not silent is sent at once.

The encoder still encodes every frame, so its state and its packets' timestamps run on through
the silence: the next packet sent is timestamped for when it was captured, and the sender's
sequence numbers stay consecutive (aiortc numbers the packets it sends, not the frames).

Relies on: ``OpusEncoder.encode`` returning ``([], None)`` for a frame without packets, and
``RTCRtpSender._next_encoded_frame`` returning None for such a frame, which ``_run_rtp`` skips
(its own case of a frame the resampler buffered); the encoder is reached through
:func:`.encoder.configure`. Checked by tests/test_aiortc_ext_dtx.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import SAMPLE_RATE, OpusEncoder
from av import AudioFrame
from av.frame import Frame

from rtcroom.aiortc_ext.encoder import configure
from rtcroom.audiolevel import audio_level

__all__ = ["HANGOVER", "KEEPALIVE", "SILENCE_LEVEL", "DtxGate", "OpusDtxEncoder", "set_encoder_dtx",
           "use_dtx"]

SILENCE_LEVEL = 100
"""A frame whose peak sample (AudioLevel, 0..32767) is below this is silence: about -50 dBFS.
Digital silence, dither and the hiss of a quiet recording (noise up to about -62 dBFS RMS,
whose peaks over a frame are some 10 dB higher) stay under it, while even quiet speech peaks
20 dB and more above it: a frame this quiet is heard as silence, so dropping it loses nothing a
listener would notice."""

HANGOVER = SAMPLE_RATE * 200 // 1000
"""Silence still sent before transmission stops: 200 ms, libopus's ten 20 ms frames."""

KEEPALIVE = SAMPLE_RATE * 400 // 1000
"""During DTX, one packet per 400 ms (libopus's DTX update interval, which decoders expect)."""

_DTX = "_rtcroom_dtx"


@dataclass
class DtxGate:
    """Decides, frame by frame, which frames of a stream are sent.

    Durations count samples of the 48 kHz RTP clock.
    """

    threshold: int = SILENCE_LEVEL
    hangover: int = HANGOVER
    keepalive: int = KEEPALIVE
    silent: int = 0
    """How long the audio has been silent, this frame included once :meth:`send` has seen it."""
    unsent: int = 0
    """How much audio has gone unsent since the last packet of the silence."""

    @property
    def transmitting(self) -> bool:
        """Not in DTX: the stream is sending every frame."""
        return self.silent <= self.hangover

    def send(self, level: int, duration: int) -> bool:
        """Whether to send a frame of peak ``level`` (0..32767) lasting ``duration`` samples."""
        if level >= self.threshold:
            self.silent = self.unsent = 0
            return True
        self.silent += duration
        if self.transmitting:
            return True
        self.unsent += duration
        if self.unsent < self.keepalive:
            return False
        self.unsent = 0
        return True


class OpusDtxEncoder(OpusEncoder):
    """aiortc's Opus encoder whose packets stop during silence (see the module's docstring).

    Made from an :class:`OpusEncoder` by :func:`use_dtx` (its class swapped, its state kept).
    """

    gate: DtxGate

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        level = int(audio_level(frame.to_ndarray()))  # s16 and interleaved, as aiortc asserts
        payloads, timestamp = super().encode(frame, force_keyframe)
        if not self.gate.send(level, frame.samples * SAMPLE_RATE // frame.sample_rate):
            return [], None  # type: ignore[return-value]  # aiortc's own "no packets" value
        return payloads, timestamp


def use_dtx(sender: RTCRtpSender, enabled: bool) -> None:
    """Opus DTX on or off for ``sender``'s encoder, now or from the frame that creates it.

    Other codecs are left as they are (G.711 has no DTX of its own in WebRTC).
    """
    if sender.__dict__.get(_DTX) is enabled:
        return
    setattr(sender, _DTX, enabled)
    configure(sender, "dtx", functools.partial(set_encoder_dtx, enabled=enabled))


def set_encoder_dtx(encoder: Encoder, enabled: bool) -> None:
    """Turn an Opus ``encoder`` into an :class:`OpusDtxEncoder` or back (others: unchanged)."""
    if not isinstance(encoder, OpusEncoder):
        return
    gated = isinstance(encoder, OpusDtxEncoder)
    if enabled and not gated:
        encoder.__class__ = OpusDtxEncoder
        encoder.gate = DtxGate()  # type: ignore[attr-defined]
    elif gated and not enabled:
        encoder.__class__ = OpusEncoder
