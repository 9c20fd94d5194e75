"""Peer connections that can carry several tracks of one kind.

With aiortc 1.16's default bundle policy ("balanced") a transceiver created while another of its
kind exists shares that one's transport, is marked bundled, and is then skipped when the BUNDLE
answer moves every transceiver to the first m-line's transport: from the second video (or audio)
track on, media goes to a transport that never connects. "max-bundle" puts every transceiver on
the first one's transport from the start, which is what a group room (one connection, many
tracks) needs on both ends. tests/test_aiortc_ext_peerconnection.py shows the failure with the
default, so a fixed aiortc is noticed. Such a connection is renegotiated many times, so it keeps
its payload types and extension ids across re-offers (:mod:`.numbering`).
"""

from __future__ import annotations

from dataclasses import replace

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection

from rtcroom.aiortc_ext.numbering import RenumberingPeerConnection
from rtcroom.aiortc_ext.transportcc import TransportCcPeerConnection


def bundled_peer_connection(ice_servers: list[RTCIceServer] | None = None,
                            configuration: RTCConfiguration | None = None,
                            transport_cc: bool = False) -> RTCPeerConnection:
    """A max-bundle connection; ``configuration``'s other settings (ICE servers, transport
    policy) are kept when given. ``transport_cc``: its owner sends transport-wide congestion
    control feedback for what it receives, so it is negotiated (:mod:`.transportcc`)."""
    if configuration is None:
        configuration = RTCConfiguration(iceServers=ice_servers)
    kind = TransportCcPeerConnection if transport_cc else RenumberingPeerConnection
    return kind(replace(configuration, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
