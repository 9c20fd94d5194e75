"""``preferred_audio_codecs`` / ``preferred_video_codecs``: the order of the codecs a
participant offers for what it publishes.

As in twilio-video.js, a preference reorders and does not restrict: the preferred codecs come
first, in the order given, then the others this end supports (so a peer or SFU without the
preferred one still gets media); a preferred codec this end cannot encode (iSAC) is passed over
(VP9 is registered with aiortc by :mod:`rtcroom.aiortc_ext.vp9`). The answering side keeps the
offer's order, and the sender sends the first codec of the answer, so the first preferred codec
both ends have is the one sent.

Opus DTX is the sender's own choice (twilio-video.js keeps ``usedtx=1`` out of the descriptions
it sends), made here from the preferences as twilio-video.js makes it.
"""

from __future__ import annotations

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from rtcroom.constants import AudioCodec, VideoCodec
from rtcroom.options import ConnectOptions, OpusCodecSettings, VP8CodecSettings

__all__ = ["codec_preferences", "opus_dtx", "prefer_codecs", "preferred_codec_names",
           "simulcast_preferred"]


def preferred_codec_names(options: ConnectOptions) -> dict[str, list[str]]:
    """The connect options' preferences by kind, as codec names."""
    return {"audio": [str(c.codec) for c in options.preferred_audio_codecs],
            "video": [str(c.codec) for c in options.preferred_video_codecs]}


def simulcast_preferred(options: ConnectOptions) -> bool:
    """VP8 simulcast is asked for: a preferred VP8 with ``simulcast`` (anywhere in the list, as
    twilio-video.js reads it)."""
    return any(isinstance(c, VP8CodecSettings) and c.codec == VideoCodec.VP8 and c.simulcast
               for c in options.preferred_video_codecs)


def opus_dtx(options: ConnectOptions) -> bool:
    """Opus is sent with DTX: unless Opus is preferred and every preferred Opus has ``dtx``
    off (a preference naming Opus alone means ``dtx`` on, its default)."""
    opus = [c for c in options.preferred_audio_codecs if c.codec == AudioCodec.OPUS]
    return not opus or any(not isinstance(c, OpusCodecSettings) or c.dtx for c in opus)


def codec_preferences(kind: str, names: list[str]) -> list[RTCRtpCodecCapability]:
    """This end's ``kind`` codecs with ``names`` first (case-insensitive), RTX kept."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    media = [c for c in capabilities if not is_rtx(c)]
    first = [c for name in names for c in media
             if c.mimeType.split("/", 1)[1].lower() == name.lower()]
    return first + [c for c in media if c not in first] + [c for c in capabilities if is_rtx(c)]


def prefer_codecs(transceiver: RTCRtpTransceiver, names: dict[str, list[str]]) -> None:
    """Order ``transceiver``'s codecs by the preferences for its kind (none: aiortc's order)."""
    wanted = names.get(transceiver.kind)
    if wanted:
        transceiver.setCodecPreferences(codec_preferences(transceiver.kind, wanted))
