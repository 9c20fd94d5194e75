"""aioice's sockets and candidate addresses, reached from an aiortc RTCPeerConnection."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import aioice.ice
from aiortc import RTCPeerConnection

__all__ = ["UdpEndpoint", "ice_connections", "udp_endpoints", "use_host_addresses"]


def ice_connections(pc: RTCPeerConnection) -> list[aioice.Connection]:
    """The aioice connections of every ICE transport of the peer connection (one with bundle)."""
    dtls = [t.sender.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls.append(pc.sctp.transport)
    connections: list[aioice.Connection] = []
    for transport in dtls:
        connection = transport.transport.iceGatherer._connection
        if all(connection is not c for c in connections):
            connections.append(connection)
    return connections


@dataclass(frozen=True)
class UdpEndpoint:
    """One local UDP candidate: aioice's protocol object and the socket under it."""

    protocol: aioice.ice.StunProtocol
    socket: socket.socket


def udp_endpoints(pc: RTCPeerConnection) -> list[UdpEndpoint]:
    """The UDP sockets aioice gathered for the peer connection (host and server-reflexive
    candidates; TURN relays are left out: their datagrams leave through the TURN client's own
    socket, to the TURN server, and carry the relay's marking, not ours)."""
    endpoints = []
    for connection in ice_connections(pc):
        for protocol in connection._protocols:
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None and sock.type == socket.SOCK_DGRAM and \
                    sock.family in (socket.AF_INET, socket.AF_INET6):
                endpoints.append(UdpEndpoint(protocol, sock))
    return endpoints


@contextlib.contextmanager
def use_host_addresses(addresses: list[str]) -> Iterator[None]:
    """Makes aioice gather host candidates on these addresses only, while the block runs.

    aioice always leaves out 127.0.0.1 and ::1; servers and tests that must stay on loopback (or
    on one chosen interface) use this around ``setLocalDescription``. It affects every peer
    connection of the process gathering meanwhile.
    """
    original = aioice.ice.get_host_addresses

    def chosen(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = chosen
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
