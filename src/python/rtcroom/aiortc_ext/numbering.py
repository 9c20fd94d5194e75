"""Re-offers that keep the payload types and header extension ids already in use.

aiortc's ``createOffer`` gives every m-line its own default numbering again (opus 96, VP8 97,
mid extension 1, ...), also on m-lines the connection negotiated with other numbers when it
answered the remote side first. Between two aiortc peers the numbers agree by accident;
Chromium, whose offer numbered things its own way (opus 111, VP8 96, audio level 1, mid 4),
refuses the re-offer ("RTP extension ID reassignment not supported"), and within a BUNDLE group
one payload type must mean one codec on every m-line. JSEP (RFC 8829 5.2.2) asks a re-offer to
keep what was negotiated, so :class:`RenumberingPeerConnection` does: negotiated m-lines keep
their codecs and extensions, new ones take the numbers the connection already uses for the same
codec or extension, and free numbers otherwise.

Relies on aiortc's ``RTCRtpTransceiver._codecs`` and ``_headerExtensions`` (what an m-line
offers, set by ``createOffer`` and ``setRemoteDescription``), checked by
tests/test_aiortc_ext.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx

__all__ = ["RenumberingPeerConnection"]

# Dynamic payload types (RFC 3551), the upper range first as browsers use it; then the lower
# range RFC 5761 leaves free with rtcp-mux.
_FREE_PAYLOAD_TYPES = [*range(96, 128), *range(35, 64)]
_EXTENSION_IDS = range(1, 15)  # one-byte header extensions

_CodecKey = tuple[object, ...]


def _key(codec: RTCRtpCodecParameters, by_payload_type: dict[int, RTCRtpCodecParameters]
         ) -> _CodecKey | None:
    """What makes two codec entries the same codec, whatever their payload types; an RTX entry
    is the RTX of its base codec."""
    if is_rtx(codec):
        base = by_payload_type.get(codec.parameters.get("apt"))  # type: ignore[arg-type]
        base_key = _key(base, by_payload_type) if base is not None else None
        return None if base_key is None else ("rtx", base_key)
    parameters = tuple(sorted((k, str(v)) for k, v in codec.parameters.items()))
    return (codec.mimeType.lower(), codec.clockRate, codec.channels or 1, parameters)


class _Numbering:
    """The payload type of each codec and the id of each extension the connection uses."""

    def __init__(self) -> None:
        self.payload_types: dict[_CodecKey, int] = {}
        self.extension_ids: dict[str, int] = {}

    def learn(self, codecs: Iterable[RTCRtpCodecParameters],
              extensions: Iterable[RTCRtpHeaderExtensionParameters]) -> None:
        codecs = [c for c in codecs if c.payloadType is not None]
        by_type = {c.payloadType: c for c in codecs if c.payloadType is not None}
        for codec in codecs:
            key = _key(codec, by_type)
            if key is not None and codec.payloadType not in self.payload_types.values():
                self.payload_types.setdefault(key, codec.payloadType)  # type: ignore[arg-type]
        for extension in extensions:
            if extension.id not in self.extension_ids.values():
                self.extension_ids.setdefault(extension.uri, extension.id)

    def codecs(self, offered: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
        """``offered`` (aiortc's defaults for a new m-line, in its order of preference) with the
        connection's numbers; RTX entries point at their base codec's new payload type."""
        by_type = {c.payloadType: c for c in offered if c.payloadType is not None}
        new_type: dict[int | None, int] = {}
        for codec in sorted(offered, key=is_rtx):  # base codecs first
            key = _key(codec, by_type)
            if key is not None:
                new_type[codec.payloadType] = self._payload_type(key)
        out = []
        for codec in offered:
            if codec.payloadType in new_type:
                codec = copy.deepcopy(codec)
                codec.payloadType = new_type[codec.payloadType]
                if is_rtx(codec):
                    codec.parameters["apt"] = new_type[codec.parameters["apt"]]  # type: ignore
                out.append(codec)
        return out

    def _payload_type(self, key: _CodecKey) -> int:
        payload_type = self.payload_types.get(key)
        if payload_type is None:
            taken = set(self.payload_types.values())
            payload_type = next(pt for pt in _FREE_PAYLOAD_TYPES if pt not in taken)
            self.payload_types[key] = payload_type
        return payload_type

    def extensions(self, offered: list[RTCRtpHeaderExtensionParameters]
                   ) -> list[RTCRtpHeaderExtensionParameters]:
        out = []
        for extension in offered:
            ext_id = self.extension_ids.get(extension.uri)
            if ext_id is None:
                taken = set(self.extension_ids.values())
                free = [i for i in _EXTENSION_IDS if i not in taken]
                if not free:
                    continue  # no room left: the m-line goes without this extension
                ext_id = self.extension_ids[extension.uri] = free[0]
            out.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=extension.uri))
        return out


class RenumberingPeerConnection(RTCPeerConnection):
    """An aiortc peer connection whose re-offers keep the numbering already negotiated."""

    async def createOffer(self) -> RTCSessionDescription:
        negotiated: dict[RTCRtpTransceiver, tuple[list[RTCRtpCodecParameters],
                                                 list[RTCRtpHeaderExtensionParameters]]] = {
            t: (t._codecs, t._headerExtensions) for t in self.getTransceivers()
            if t.mid is not None and t._codecs}
        offer = await super().createOffer()
        if not negotiated:
            return offer  # a first offer: aiortc's numbering is the connection's
        numbering = _Numbering()
        for codecs, extensions in negotiated.values():
            numbering.learn(codecs, extensions)
        remote = self.remoteDescription
        if remote is not None:
            for media in aiortc_sdp.SessionDescription.parse(remote.sdp).media:
                if media.kind in ("audio", "video"):
                    numbering.learn(media.rtp.codecs, media.rtp.headerExtensions)
        description = aiortc_sdp.SessionDescription.parse(offer.sdp)
        by_mid = {t.mid: t for t in self.getTransceivers() if t.mid is not None}
        new = [t for t in self.getTransceivers() if t.mid is None and not t.stopped]
        for media in description.media:
            if media.kind not in ("audio", "video"):
                continue
            transceiver = by_mid.get(media.rtp.muxId)
            if transceiver in negotiated:
                transceiver._codecs, transceiver._headerExtensions = negotiated[transceiver]
            else:
                # New m-lines come in the order aiortc added them, after the known ones.
                transceiver = transceiver or new.pop(0)
                transceiver._codecs = numbering.codecs(transceiver._codecs)
                transceiver._headerExtensions = numbering.extensions(
                    transceiver._headerExtensions)
            media.fmt = [c.payloadType for c in transceiver._codecs]
            media.rtp.codecs = transceiver._codecs
            media.rtp.headerExtensions = transceiver._headerExtensions
        return RTCSessionDescription(sdp=str(description), type=offer.type)
