"""Per-subscriber rewriting of forwarded RTP: SSRC, sequence numbers, timestamps, payload type,
header extensions and VP8 picture ids, continuous across pauses and source (simulcast layer)
switches, with keyframe gating. The work is native (``rtcroom._native.forward``, one call per
incoming packet for all of a track's subscribers: :func:`forward_all`); its plain-Python twin is
tests/sfu_forwarder_reference.py.

A :class:`Forwarder` rewrites one source track's packets for one subscriber.
``select(ssrc)`` names the source stream to forward (one simulcast layer, or the only stream);
``select(None)`` pauses. A video forwarder starts, resumes and switches only at a keyframe of the
selected stream and keeps forwarding the previous one until then; audio switches at once. Output
sequence numbers have no gaps from switches or pauses, output timestamps advance by the
wall-clock time that passed, and on VP8 payload types the picture id and TL0PICIDX continue from
the last ones sent (each simulcast layer numbers its own; decoders in browsers take a jump for
loss): the subscriber's decoder sees one continuous stream.

``attach`` gives a forwarder the leg's SRTP session and socket (a :class:`Sink`, see
``rtcroom.aiortc_ext.rtp.direct_sink``): :func:`forward_all` then protects and sends its packets
itself, and hands back only those of forwarders without one."""

from __future__ import annotations

from dataclasses import dataclass

from rtcroom._native.forward import Forwarder as _Forwarder
from rtcroom._native.forward import Sink, forward_all
from rtcroom.aiortc_ext.rtp import DirectSink

__all__ = ["Forwarder", "LegExtensions", "Sink", "forward_all", "native_sink"]


def native_sink(direct: DirectSink) -> Sink:
    """The native sender of a connection's SRTP (see ``direct_sink``); the caller keeps
    ``direct`` (and with it the SRTP session) while the sink is in use."""
    return Sink(direct.protect, direct.session, direct.fd, direct.host, direct.port)


@dataclass(frozen=True)
class LegExtensions:
    """The header extensions written on one subscriber's leg: the ids negotiated there (None when
    not negotiated) and that leg's mid, which differs from the publisher's. Written in the
    one-byte form where every id and value allows it (RFC 8285), else the two-byte form."""

    mid_id: int | None = None
    mid: str = ""
    audio_level_id: int | None = None
    abs_send_time_id: int | None = None


class Forwarder(_Forwarder):
    def __init__(
        self, *, ssrc: int, clock_rate: int, payload_types: dict[int, int],
        extensions: LegExtensions, wait_for_keyframe: bool, first_sequence_number: int,
        first_timestamp: int, vp8_payload_types: tuple[int, ...] = (),
    ) -> None:
        """``payload_types`` maps the publisher's payload types to the subscriber's; packets of
        other types are dropped. ``vp8_payload_types``: the publisher's VP8 ones."""
        super().__init__(
            ssrc=ssrc, clock_rate=clock_rate, payload_types=payload_types,
            vp8_payload_types=list(vp8_payload_types),
            mid_id=_id(extensions.mid_id), mid=extensions.mid,
            audio_level_id=_id(extensions.audio_level_id),
            abs_send_time_id=_id(extensions.abs_send_time_id),
            wait_for_keyframe=wait_for_keyframe,
            first_sequence_number=first_sequence_number, first_timestamp=first_timestamp)
        self.extensions = extensions


def _id(extension_id: int | None) -> int:
    return -1 if extension_id is None else extension_id
