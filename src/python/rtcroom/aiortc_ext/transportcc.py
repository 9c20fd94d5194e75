"""Negotiating transport-wide congestion control, which aiortc 1.16 leaves out of its answers.

aiortc knows neither the transport-wide sequence number header extension nor transport-cc
feedback, so its answers drop ``a=extmap:<id> ...transport-wide-cc...`` and
``a=rtcp-fb:<pt> transport-cc``; Chromium then has no send-side bandwidth estimate to grow, and
a publisher stays near its start bitrate (one simulcast layer). An end that gives that feedback
itself (the SFU: rtcroom.server.sfu.transportcc) keeps both where the remote description has
them: :class:`TransportCcPeerConnection` adds them back to each m-line after aiortc negotiated
it, with the remote's extension id and payload types, so the answer and later re-offers
(:mod:`.numbering` keeps what was negotiated) carry them.

Relies on aiortc's ``RTCRtpTransceiver._codecs`` and ``_headerExtensions`` (what the next
description of an m-line says, set by ``setRemoteDescription``) and ``rtcpFeedback`` of the
codec entries, checked by tests/test_aiortc_ext.py and tests/test_transportcc.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtcpFeedback

from rtcroom.aiortc_ext.numbering import RenumberingPeerConnection

__all__ = ["TRANSPORT_CC_URI", "TransportCcPeerConnection", "keep_transport_cc"]

TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
_FEEDBACK = RTCRtcpFeedback(type="transport-cc")


def keep_transport_cc(transceivers: Iterable[RTCRtpTransceiver], remote_sdp: str) -> None:
    """Add the transport-wide sequence number extension and transport-cc feedback to the
    negotiated m-lines of ``transceivers`` where ``remote_sdp`` (just applied) has them."""
    by_mid = {t.mid: t for t in transceivers if t.mid is not None}
    for media in aiortc_sdp.SessionDescription.parse(remote_sdp).media:
        transceiver = by_mid.get(media.rtp.muxId)
        if transceiver is None or media.kind not in ("audio", "video"):
            continue
        extension = next((e for e in media.rtp.headerExtensions
                          if e.uri == TRANSPORT_CC_URI), None)
        if extension is None:
            continue
        if all(e.uri != TRANSPORT_CC_URI for e in transceiver._headerExtensions):
            transceiver._headerExtensions.append(
                RTCRtpHeaderExtensionParameters(id=extension.id, uri=extension.uri))
        with_feedback = {c.payloadType for c in media.rtp.codecs if _FEEDBACK in c.rtcpFeedback}
        for codec in transceiver._codecs:
            if codec.payloadType in with_feedback and _FEEDBACK not in codec.rtcpFeedback:
                codec.rtcpFeedback.append(_FEEDBACK)


class TransportCcPeerConnection(RenumberingPeerConnection):
    """A connection whose owner sends transport-wide congestion control feedback for what it
    receives: it negotiates the extension and the feedback wherever the remote side offers
    them."""

    async def setRemoteDescription(self, sessionDescription: RTCSessionDescription) -> None:
        await super().setRemoteDescription(sessionDescription)
        keep_transport_cc(self.getTransceivers(), sessionDescription.sdp)
