"""Capping what a sender's encoder spends (``max_audio_bitrate`` / ``max_video_bitrate``).

aiortc gives a sender no bitrate setting: the encoder is a private object
(``RTCRtpSender.__encoder``), created on the first frame; VP8 and H.264 encoders have a
``target_bitrate`` that aiortc's REMB handling sets (clamped to 250 kbps..1.5 Mbps for VP8,
500 kbps..3 Mbps for H.264), and the Opus encoder a fixed 96 kbps set on its codec context, which
libopus reads only when the context opens.

:func:`cap_bitrate` stores a cap on the sender and applies it to the encoder, now or on the
sender's next frame when it has none yet:

- VP8 / H.264: the encoder's class is swapped for a subclass whose ``target_bitrate`` setter
  keeps what was asked (REMB, or aiortc's default) and sets the minimum of that and the cap,
  below aiortc's lower clamp if the cap is (libvpx and libx264 rate control take any rate);
  the encoder rebuilds its codec context at the next frame, as it does for a REMB change.
- Opus: the codec context is replaced by one with the new ``bit_rate`` and the same settings
  (the packet timestamps continue: both contexts count from the frames' own pts).
- G.711 runs at its fixed 64 kbps: a cap changes nothing.

:func:`configure` is the way to the encoder for such settings (the cap, and Opus DTX in
:mod:`.dtx`): it applies a setting to the sender's encoder, or keeps it for the frame that creates
the encoder.

Relies on: ``RTCRtpSender._RTCRtpSender__encoder`` and ``_next_encoded_frame(codec)`` (wrapped
here), ``aiortc.rtcrtpsender.get_encoder`` (looked up there at call time, as the sender does,
so VP9 from :mod:`.vp9` is included), ``Vp8Encoder`` / ``H264Encoder``'s ``target_bitrate``
property and its ``__target_bitrate`` slot, ``OpusEncoder.codec``; checked by
tests/test_aiortc_ext_encoder.py.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiortc import RTCRtpSender, rtcrtpsender
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import OpusEncoder
from av.audio.codeccontext import AudioCodecContext
from av.codec import CodecContext

__all__ = ["cap_bitrate", "cap_encoder", "configure", "encoder_of", "install"]

_CAP = "_rtcroom_max_bitrate"
_PENDING = "_rtcroom_encoder_pending"
_PATCHED = "_rtcroom_configured_frames"


def encoder_of(sender: RTCRtpSender) -> Encoder | None:
    """The sender's encoder (None before its first frame)."""
    encoder: Encoder | None = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
    return encoder


def configure(sender: RTCRtpSender, setting: str, apply: Callable[[Encoder], None]) -> None:
    """Run ``apply`` on ``sender``'s encoder, now or on the frame that creates it (then only the
    last ``apply`` given per ``setting`` runs)."""
    encoder = encoder_of(sender)
    if encoder is None:
        sender.__dict__.setdefault(_PENDING, {})[setting] = apply
    else:
        apply(encoder)


def cap_bitrate(sender: RTCRtpSender, bitrate: int | None) -> None:
    """Keep ``sender``'s encoder at or below ``bitrate`` bits/s (None or 0: no cap)."""
    bitrate = bitrate or None
    if sender.__dict__.get(_CAP) == bitrate:
        return
    setattr(sender, _CAP, bitrate)
    configure(sender, "max_bitrate", functools.partial(cap_encoder, bitrate=bitrate))


def cap_encoder(encoder: Encoder, bitrate: int | None) -> None:
    """Keep `encoder` (VP8, H.264 or Opus) at or below `bitrate` bits/s (None: no cap)."""
    if isinstance(encoder, OpusEncoder):
        _cap_opus(encoder, bitrate)
    elif isinstance(getattr(type(encoder), "target_bitrate", None), property):
        if not hasattr(encoder, "_rtcroom_asked"):
            asked = encoder.target_bitrate  # type: ignore[attr-defined]
            encoder.__class__ = _capped_class(type(encoder))
            encoder._rtcroom_asked = asked  # type: ignore[attr-defined]
        encoder._rtcroom_cap = bitrate  # type: ignore[attr-defined]
        encoder.target_bitrate = encoder._rtcroom_asked  # type: ignore[attr-defined]


@functools.cache
def _capped_class(base: type) -> type:
    owner = next(c for c in base.__mro__ if "target_bitrate" in c.__dict__)
    slot = f"_{owner.__name__}__target_bitrate"
    prop: property = owner.__dict__["target_bitrate"]
    assert prop.fset is not None

    def set_target(self: Any, bitrate: int) -> None:
        prop.fset(self, bitrate)  # type: ignore[misc]  # aiortc's clamp
        self._rtcroom_asked = getattr(self, slot)
        cap = getattr(self, "_rtcroom_cap", None)
        if cap is not None:
            setattr(self, slot, min(self._rtcroom_asked, cap))

    return type(f"Capped{base.__name__}", (base,), {
        "target_bitrate": property(prop.fget, set_target),
        "__doc__": f"{base.__name__} whose target bitrate stays under rtcroom's cap."})


def _cap_opus(encoder: OpusEncoder, bitrate: int | None) -> None:
    old = encoder.codec
    default = cast(int, encoder.__dict__.setdefault("_rtcroom_default", old.bit_rate))
    wanted = default if bitrate is None else min(default, bitrate)
    if wanted == old.bit_rate:
        return
    codec = cast(AudioCodecContext, CodecContext.create(old.name, "w"))
    codec.bit_rate = wanted
    codec.format = old.format
    codec.layout = old.layout
    codec.options = dict(old.options)
    codec.sample_rate = old.sample_rate
    codec.time_base = old.time_base
    encoder.codec = codec


def install() -> None:
    """Apply settings made before the encoder existed on the frame that creates it
    (idempotent)."""
    original: Callable[..., Awaitable[Any]] = RTCRtpSender._next_encoded_frame
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    async def next_encoded_frame(self: RTCRtpSender, codec: Any) -> Any:
        pending: dict[str, Callable[[Encoder], None]] = self.__dict__.pop(_PENDING, {})
        if pending:
            encoder = encoder_of(self)
            if encoder is None:
                encoder = rtcrtpsender.get_encoder(codec)
                self._RTCRtpSender__encoder = encoder  # type: ignore[attr-defined]
            for apply in pending.values():
                apply(encoder)
        return await original(self, codec)

    setattr(next_encoded_frame, _PATCHED, True)
    RTCRtpSender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign]


install()
