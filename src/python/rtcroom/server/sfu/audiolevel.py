"""The RFC 6464 audio level of a track whose sender does not put it in the header extension:
its packets are decoded (by aiortc's decoder for the codec) only to measure each frame with the
native kernel. The SFU decodes nothing else; senders that provide the extension (browsers,
aiortc, rtcroom) cost nothing here."""

from __future__ import annotations

from aiortc.codecs import depayload, get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import AudioFrame, FFmpegError

from rtcroom.audiolevel import audio_level_dbov


class DecodedAudioLevel:
    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec = codec
        self._decoder = get_decoder(codec)

    def level(self, payload: bytes, timestamp: int) -> int | None:
        """The level (-dBov, 0..127) of the frame in `payload`; None if it did not decode."""
        try:
            frames = self._decoder.decode(JitterFrame(depayload(self.codec, payload), timestamp))
        except (FFmpegError, ValueError):  # a corrupt frame costs its own level only
            return None
        levels = [audio_level_dbov(f.to_ndarray()) for f in frames if isinstance(f, AudioFrame)]
        return min(levels) if levels else None
