"""DSCP marking of every UDP socket of an aiortc RTCPeerConnection (the reference's
``enable_dscp``): audio EF (0xb8), video AF41 (0x88).

With bundle, audio and video leave through one socket, so a socket-wide setting cannot tell them
apart. Each datagram is classified as it leaves (by the SSRC in its unencrypted RTP/RTCP header,
see :mod:`.ssrc`) and marked on its own:

1. per packet, with the traffic class as ``sendmsg`` ancillary data (:func:`rtcroom.dscp.send_marked`)
   where the platform allows it (Linux; IPv6 on macOS and the BSDs). The socket keeps the
   connection's default class for everything else;
2. elsewhere, the socket's own setting is switched with ``setsockopt`` whenever the class of
   consecutive media packets changes (what libwebrtc does on every platform): one extra system
   call per switch. The compromise: a packet that asyncio had to buffer (send buffer full) leaves
   later with whatever class the socket has by then.

Datagrams that are not RTP/RTCP of a known sender (STUN, DTLS, an unknown SSRC) carry the
connection's default class: video's when it sends any video (most of its bytes), audio's
otherwise. TURN relays are not marked (see :func:`.ice.udp_endpoints`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, cast

from aiortc import RTCPeerConnection

from rtcroom.aiortc_ext.ice import UdpEndpoint, udp_endpoints
from rtcroom.aiortc_ext.ssrc import SenderSsrcs
from rtcroom.dscp import (
    AUDIO_TRAFFIC_CLASS,
    VIDEO_TRAFFIC_CLASS,
    SendResult,
    send_marked,
    set_traffic_class,
)

__all__ = ["DscpMarker", "enable_dscp"]

logger = logging.getLogger("rtcroom.webrtc")


class _MarkedSocket:
    """Replaces one aioice protocol's ``send_data`` to mark what it sends."""

    def __init__(self, marker: DscpMarker, endpoint: UdpEndpoint) -> None:
        self.marker = marker
        self.protocol = endpoint.protocol
        self.socket = endpoint.socket
        self.fd = endpoint.socket.fileno()
        self.socket_class: int | None = None
        self.per_packet = True
        # The OS refuses both ways of marking: send as is (set_traffic_class warned once).
        self.unmarkable = False
        self.protocol.send_data = self.send_data  # type: ignore[method-assign]

    def set_socket_class(self, traffic_class: int) -> bool:
        if traffic_class != self.socket_class:
            if not set_traffic_class(self.socket, traffic_class):
                return False
            self.socket_class = traffic_class
        return True

    async def send_data(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.protocol.transport
        traffic_class = self.marker.traffic_class(data)
        # asyncio's datagram transports buffer like write transports, though not typed as such.
        buffered = cast(asyncio.WriteTransport, transport).get_write_buffer_size()
        if traffic_class is None or traffic_class == self.socket_class or buffered or \
                self.unmarkable:
            transport.sendto(data, addr)
            return
        if self.per_packet:
            try:
                result = send_marked(self.fd, data, addr, traffic_class)
            except OSError as exc:
                self.protocol.error_received(exc)  # what asyncio's own sendto does
                return
            if result is SendResult.SENT:
                return
            if result is SendResult.WOULD_BLOCK:
                transport.sendto(data, addr)  # asyncio buffers it, in order
                return
            self.per_packet = False
            logger.info("no per-packet DSCP for %s on this platform; switching the socket's "
                        "class per media kind instead", socket.AddressFamily(self.socket.family).name)
        if not self.set_socket_class(traffic_class):
            self.unmarkable = True
        transport.sendto(data, addr)


class DscpMarker:
    """Marks a peer connection's outgoing datagrams by media kind. Create it with
    :func:`enable_dscp`."""

    def __init__(self, pc: RTCPeerConnection, *, audio: int = AUDIO_TRAFFIC_CLASS,
                 video: int = VIDEO_TRAFFIC_CLASS) -> None:
        for name, value in (("audio", audio), ("video", video)):
            if not 0 <= value <= 255:
                raise ValueError(f"{name} traffic class must be 0..255, got {value}")
        self.ssrcs = SenderSsrcs(pc)
        self._pc = pc
        self._classes = {"audio": audio, "video": video}
        self._sockets: dict[int, _MarkedSocket] = {}

    @property
    def default_class(self) -> int:
        """The class of everything not told apart: video's if the connection sends video."""
        return self._classes["video" if "video" in self.ssrcs.kinds() else "audio"]

    def traffic_class(self, data: bytes) -> int | None:
        """The class this datagram must carry, None when it takes the socket's default."""
        source = self.ssrcs.lookup(data)
        return None if source is None else self._classes[source.kind]

    def sockets(self) -> list[socket.socket]:
        """The connection's marked sockets (as of the last :meth:`apply`)."""
        return [s.socket for s in self._sockets.values()]

    def apply(self) -> int:
        """Marks the sockets the connection uses now: call it again after a renegotiation adds
        senders (bundling also drops the transports of the other m-lines); returns how many."""
        default = self.default_class
        current = {}
        for endpoint in udp_endpoints(self._pc):
            marked = self._sockets.get(id(endpoint.protocol))
            if marked is None or marked.protocol is not endpoint.protocol:
                marked = _MarkedSocket(self, endpoint)
            marked.set_socket_class(default)
            current[id(endpoint.protocol)] = marked
        self._sockets = current
        return len(current)


def enable_dscp(pc: RTCPeerConnection, *, audio: int = AUDIO_TRAFFIC_CLASS,
                video: int = VIDEO_TRAFFIC_CLASS) -> DscpMarker:
    """Marks the peer connection's UDP sockets now, each time ICE gathering completes (aiortc
    gathers in ``setLocalDescription``) and when the connection is up, so it can be called right
    after creating ``pc``."""
    marker = DscpMarker(pc, audio=audio, video=video)
    marker.apply()

    def on_gathering(*_: Any) -> None:
        if pc.iceGatheringState == "complete":
            marker.apply()

    def on_connection(*_: Any) -> None:
        if pc.connectionState == "connected":
            marker.apply()

    pc.on("icegatheringstatechange", on_gathering)
    pc.on("connectionstatechange", on_connection)
    return marker
