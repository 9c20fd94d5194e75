"""The one place rtcroom reaches into aiortc and aioice internals (pinned in pyproject.toml).

What is relied on, all checked by tests/test_aiortc_ext.py so an upgrade that moves any of it
fails there first:

- aiortc: ``RTCIceGatherer._connection`` (the aioice connection), ``RTCRtpSender._ssrc`` and
  ``_rtx_ssrc``, ``RTCDtlsTransport._send_rtp(data)`` (the coroutine every RTP and RTCP packet
  goes through before SRTP; libwebrtc's pacer sits at the same point);
- aioice: ``Connection._protocols`` (one ``StunProtocol`` per local candidate), their
  ``transport`` (an asyncio datagram transport) and ``send_data(data, addr)`` (the coroutine
  every outgoing datagram of a selected pair goes through), ``aioice.ice.get_host_addresses``;
- :mod:`.closing` (installed on import) wraps ``aioice.ice.Connection.query_consent`` (reading
  ``_closing``, clearing ``_query_consent_task``) and ``RTCRtpSender.send`` / ``stop``, so that
  nothing starts on a connection closed while it was still connecting.

Modules: :mod:`.ice` (sockets and candidates), :mod:`.ssrc` (which sender a packet comes from),
:mod:`.dscp` (DSCP marking of a peer connection), :mod:`.pacing` (paced RTP), :mod:`.rtp`
(packet-level receive and send for the SFU; lists what it relies on, tested by
tests/test_aiortc_ext_rtp.py), :mod:`.peerconnection` (max-bundle connections),
:mod:`.simulcast` (VP8 simulcast sending), :mod:`.transportcc` (negotiating transport-wide
congestion control, which aiortc drops from its answers), :mod:`.transceiver` (reusing an m-line
for a new stream; lists what it relies on, tested by tests/test_aiortc_ext_transceiver.py),
:mod:`.encoder` (bitrate caps on a sender's private encoder, installed on import; tested by
tests/test_aiortc_ext_encoder.py), :mod:`.dtx` (Opus DTX on a sender, through :mod:`.encoder`;
lists what it relies on, tested by tests/test_aiortc_ext_dtx.py), :mod:`.repair`
(retransmissions routed to their receiver and video jitter-buffer stalls bounded, installed on
import; tested by tests/test_aiortc_ext_repair.py), :mod:`.vp9` (VP9 codec, encoder, RTP payload
format and decoder, registered on import; lists what it relies on, tested by
tests/test_aiortc_ext_vp9.py).
"""

from rtcroom.aiortc_ext import repair, vp9  # noqa: F401 (install on import)
from rtcroom.aiortc_ext.closing import stop_late_starts
from rtcroom.aiortc_ext.dscp import DscpMarker, enable_dscp
from rtcroom.aiortc_ext.ice import ice_connections, udp_endpoints, use_host_addresses
from rtcroom.aiortc_ext.pacing import RtpPacer, enable_pacing

__all__ = [
    "DscpMarker",
    "RtpPacer",
    "enable_dscp",
    "enable_pacing",
    "ice_connections",
    "stop_late_starts",
    "udp_endpoints",
    "use_host_addresses",
]

stop_late_starts()
